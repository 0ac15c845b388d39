"""Turnaround figures for managers, computed in the database.

- `selection`: which requests the figures cover (a range of filing days and filters, checked);
- `buckets`: counts and exact percentiles, by duration bucket, over whole weeks from the
  rollups and the days around them from `request_figures`;
- `figures`: the figures per group, per day, the resolution histogram, per agent, and CSV;
- `backlog`: what is open right now, by status and by age;
- `report`: the dashboard's headline tiles and the turnaround API's answer;
- `rollups`: the weekly rollups the figures read and the projection writes.
"""
