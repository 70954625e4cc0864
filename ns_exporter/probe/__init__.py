"""The isolation probe: creates a throw-away namespace in a helper process and checks it.

Two halves that share only plain data:
- the helper side (stdlib only, runs in a fresh single-threaded process): `kernel`, `spec`,
  `kinds/*`, `modules`, `worker`, `forkserver`;
- the exporter side: `runner` (talks to the helper), `gate`, `settings`, `metrics`,
  `handler` (/probe), `periodic`, `verdict` (the CLI's text).

Keep this file free of imports: the helper imports the package at start-up.
"""
