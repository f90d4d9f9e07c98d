"""schemathesis hooks for scripts/contract.sh: the agent's served document is the contract.

- `no_secret_leaks`: no response (status line, headers or body) contains one of the secrets
  the job was posted with (DTLE_CONTRACT_SECRETS, comma-separated).
- `map_path_parameters`: a random ID rarely names a real job, so for reads half of the
  generated path parameters are replaced by the real IDs of the running job
  (DTLE_CONTRACT_IDS: a JSON object, parameter name -> list of values). Writes keep their
  random IDs: the job must keep running for the whole run.
- `map_query`: blocking reads wait a second at most.

One worker only: CPython 3.11 may fail to compile in two threads at once ("AST constructor
recursion depth mismatch"), which schemathesis reports as an error of the operation.
"""

import json
import os
import random

import schemathesis

SECRETS = [s for s in os.environ.get("DTLE_CONTRACT_SECRETS", "").split(",") if s]
REAL_IDS = json.loads(os.environ.get("DTLE_CONTRACT_IDS", "{}"))
_pick = random.Random(os.environ.get("DTLE_CONTRACT_SEED", "0"))


@schemathesis.check
def no_secret_leaks(ctx, response, case):
    """Fail when a posted secret comes back in any form the client sees."""
    seen = [response.text or ""]
    seen += [f"{name}: {', '.join(values)}" for name, values in response.headers.items()]
    for secret in SECRETS:
        for text in seen:
            if secret in text:
                raise AssertionError(
                    f"a job's secret comes back in the response of {case.method} {case.path}"
                )


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if path_parameters is None or context.operation.method.upper() != "GET":
        return path_parameters
    mapped = dict(path_parameters)
    for name in mapped:
        values = REAL_IDS.get(name)
        if values and _pick.random() < 0.5:
            mapped[name] = _pick.choice(values)
    return mapped


@schemathesis.hook
def map_query(context, query):
    """A blocking read (`?index=N`) waits up to 5 minutes for a change, by design: keep the
    generated ones to a second, so the run does not time out waiting for a job to change."""
    if query and "index" in query:
        mapped = dict(query)
        mapped["wait"] = "1s"
        return mapped
    return query
