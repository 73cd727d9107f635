//! The report of `make bench`: a Markdown table and an SVG bar chart.
