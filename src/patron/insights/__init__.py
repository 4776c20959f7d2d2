"""Insights: dashboards, reports, the funnel, forecast and attribution."""
