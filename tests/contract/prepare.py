"""Helpers of scripts/contract.sh, run with the venv's python (no curl on a fresh machine).

  prepare.py register URL JOB_FILE        posts the job, prints its ID
  prepare.py wait-running URL JOB_ID      waits until both tasks run and the snapshot is done
  prepare.py ids URL JOB_ID               prints DTLE_CONTRACT_IDS (JSON) for hooks.py
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(method, url, body=None):
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    token = os.environ.get("DTLE_CONTRACT_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def register(base, job_file):
    with open(job_file, encoding="utf-8") as f:
        status, answer = call("POST", f"{base}/v1/jobs", f.read())
    if status != 200:
        sys.exit(f"contract: the job was refused ({status}): {answer}")
    print(answer["ID"])


def wait_running(base, job_id, seconds=120):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        status, allocs = call("GET", f"{base}/v1/job/{job_id}/allocations")
        if status == 200:
            running = [a for a in allocs if a["ClientStatus"] == "running"]
            if len(running) == 2:
                stages = []
                for alloc in running:
                    status, stats = call("GET", f"{base}/v1/agent/allocation/{alloc['ID']}/stats")
                    if status == 200:
                        stages += [t["Stage"] for t in stats["Tasks"].values()]
                last = stages
                if stages and all(s != "snapshot" and s for s in stages):
                    return
        else:
            last = allocs
        time.sleep(0.5)
    sys.exit(f"contract: the job does not run after {seconds} s: {last}")


def ids(base, job_id):
    found = {"ID": [job_id], "jobId": [job_id]}
    _, allocs = call("GET", f"{base}/v1/job/{job_id}/allocations")
    found["allocID"] = [a["ID"] for a in allocs] + [a["ID"][:8] for a in allocs]
    _, overview = call("GET", f"{base}/jobs/overview")
    jids = [j["jid"] for j in overview.get("jobs", []) if j.get("name") == job_id or
            j.get("dtle-job-id") == job_id]
    found["jobid"] = jids + [job_id]
    vertices = []
    checkpoints = []
    for jid in jids:
        _, job = call("GET", f"{base}/jobs/{jid}")
        vertices += [v["id"] for v in job.get("vertices", [])]
        _, history = call("GET", f"{base}/jobs/{jid}/checkpoints")
        checkpoints += [str(c["id"]) for c in (history.get("history") or [])[:3]]
    found["vertexid"] = vertices + ["Src", "Dest"]
    found["checkpointid"] = checkpoints
    print(json.dumps(found))


if __name__ == "__main__":
    command, base, arg = sys.argv[1:4]
    {"register": register, "wait-running": wait_running, "ids": ids}[command](base, arg)
