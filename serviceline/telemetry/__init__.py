"""What a line tells the outside: metrics, traces, lineage events and Grafana."""
