# ruff: noqa: RUF001 - full-width punctuation is how Chinese is written
"""MIME assembly and DKIM signing per message: Patron's against the usual Python way.

    python bench/bench_mime.py [--messages N] [--quick]

1. ``patron.mail.mime.build_message`` against ``email.message.EmailMessage``
   (what Django's mail and most Python code use) for the same personalised
   newsletter (about 20 KB of HTML and its text part), in English and in
   Chinese/Vietnamese: microseconds per message.
2. DKIM signing (relaxed/relaxed, the same headers): ``patron.mail.dkim``
   (OpenSSL through ``cryptography``) against ``dkimpy`` (pure-Python RSA),
   for RSA-2048, RSA-1024 and Ed25519.

No database is involved; results go to ``bench/results/mime.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")

from common import Metric, write_result  # noqa: E402
from sinklib import naive_message, naive_sign  # noqa: E402

PARAGRAPH = {
    "english": "We picked the best of this season for you, {name}: new arrivals, "
    "restocked favourites and a few surprises. ",
    "chinese": "親愛的{name}，感謝您的訂閱！本季新品已經上架，歡迎選購。"
    "Chào bạn {name}, ưu đãi đặc biệt. ",
}


def newsletter(language: str, number: int) -> dict[str, str]:
    name = f"Lan {number}"
    paragraph = PARAGRAPH[language].format(name=name)
    html = (
        '<!doctype html><html><body><table width="600" style="margin:0 auto">'
        + "".join(
            f'<tr><td style="padding:8px;font-family:Arial"><p>{paragraph * 3}</p>'
            f'<a href="https://t.acme.example/c/{number}/{link}">Shop now</a></td></tr>'
            for link in range(25)
        )
        + "</table></body></html>"
    )
    return {
        "from_name": "Acme 商店" if language == "chinese" else "Acme Store",
        "from_email": "news@acme.example",
        "to_email": f"lan{number}@example.com",
        "subject": f"{name}, {paragraph[:40]}",
        "html": html,
        "text": paragraph * 25,
        "message_id": f"<{number}@mail.acme.example>",
    }


HEADERS = [
    ("List-Unsubscribe", "<https://acme.example/u/AbCdEf0123456789/>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
]


def per_message(function: Callable[[int], object], count: int) -> float:
    """Microseconds per call of ``function(n)`` for n in range(count), CPU time."""
    function(0)
    start = time.process_time()
    for number in range(count):
        function(number)
    return (time.process_time() - start) / count * 1e6


def keys() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL
            if isinstance(key, rsa.RSAPrivateKey)
            else serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    return {
        "RSA-2048": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        # Measured to show what the key size costs; 2048 bits is what to publish.
        "RSA-1024": pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505
        "Ed25519": pem(ed25519.Ed25519PrivateKey.generate()),
    }


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from patron.mail.dkim import DkimSigner
    from patron.mail.mime import build_message

    count = 200 if args.quick else args.messages
    metrics: list[Metric] = []
    sizes = {}
    for language in ("english", "chinese"):
        contents = [newsletter(language, n) for n in range(count)]
        patron = per_message(
            lambda n, contents=contents: build_message(**contents[n], headers=HEADERS), count
        )
        naive = per_message(
            lambda n, contents=contents: naive_message(**contents[n], headers=HEADERS), count
        )
        sizes[language] = len(build_message(**contents[0], headers=HEADERS))
        metrics.append(Metric(f"build_message, {language}", patron, "us/msg", naive))

    messages = [build_message(**newsletter("english", n), headers=HEADERS) for n in range(count)]
    for name, pem in keys().items():
        signer = DkimSigner("acme.example", "bench", pem)
        signs = max(20, count // (4 if name.startswith("RSA-2") else 1))
        patron = per_message(lambda n, signer=signer: signer.sign(messages[n % count]), signs)
        dkimpy_count = max(10, signs // 10) if name.startswith("RSA") else signs

        def dkimpy_sign(n: int, pem: bytes = pem) -> bytes:
            return naive_sign(
                messages[n % count], domain="acme.example", selector="bench", private_key_pem=pem
            )

        naive = per_message(dkimpy_sign, dkimpy_count)
        metrics.append(Metric(f"DKIM sign {name}", patron, "us/msg", naive))

    build = metrics[0].value
    rsa = next(m.value for m in metrics if m.metric == "DKIM sign RSA-2048")
    ed = next(m.value for m in metrics if m.metric == "DKIM sign Ed25519")
    metrics += [
        Metric("build + RSA-2048 per message", build + rsa, "us/msg"),
        Metric("one core's ceiling, build + RSA-2048", 1e6 / (build + rsa), "msg/s"),
        Metric("one core's ceiling, build + Ed25519", 1e6 / (build + ed), "msg/s"),
    ]
    write_result("mime", None, metrics)
    print(
        f"  {count} messages; {sizes['english']:,} bytes (English), "
        f"{sizes['chinese']:,} bytes (Chinese/Vietnamese); CPU time per message; "
        "baselines: EmailMessage, dkimpy"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
