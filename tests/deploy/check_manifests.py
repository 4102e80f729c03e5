#!/usr/bin/env python3
"""check_manifests.py SOURCE_DIR RENDERED_DIR MODE PROJECT REGION

Parses the manifests deploy/gcloud.sh rendered (service.yaml, job.yaml, the alert policies)
and deploy/cloudbuild.yaml, and checks them against what jobrelay and its image read:
the port (the Dockerfile's $PORT and EXPOSE; Cloud Run sets PORT from containerPort, and
jobrelay reads getenv("PORT")), the config file ($JOBRELAY_CONFIG in the Dockerfile and in
src/cmd/commands.c, mounted from a Secret Manager secret at that very path), the service accounts
deploy/gcloud.sh creates, the probe paths jobrelay answers (src/io/httpd.c), and the job image's
required environment (deploy/job-image/entrypoint.sh), and the Managed Service for
Prometheus sidecar (a second container without a port, started after jobrelay, its
RunMonitoring config mounted from a secret at /etc/rungmp/config.yaml, scraping the port and
path jobrelay serves /metrics on). Prints one line per failed check and
exits 1, or prints "ok" and exits 0. Needs PyYAML (Debian: python3-yaml).
"""
import os
import re
import sys

import yaml

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def dockerfile_runtime(text):
    """ENV, EXPOSE, USER, ENTRYPOINT, CMD of the Dockerfile's last stage."""
    text = text.replace("\\\n", " ")
    stage = re.split(r"^FROM\s", text, flags=re.M)[-1]
    env = {}
    for line in re.findall(r"^ENV\s+(.*)$", stage, flags=re.M):
        for k, v in re.findall(r"(\w+)=(\S+)", line):
            env[k] = v
    def one(word):
        m = re.findall(r"^%s\s+(.*)$" % word, stage, flags=re.M)
        return m[-1].strip() if m else None
    return env, one("EXPOSE"), one("USER"), one("ENTRYPOINT"), one("CMD")


def main():
    src, out, mode, project, region = sys.argv[1:6]
    relay = "jobrelay@%s.iam.gserviceaccount.com" % project
    runtime = "job-runtime@%s.iam.gserviceaccount.com" % project

    # what jobrelay reads, from its source
    main_c = read(os.path.join(src, "src/cmd/commands.c"))
    serve_c = read(os.path.join(src, "src/cmd/serve.c"))
    httpd_c = read(os.path.join(src, "src/io/httpd.c"))
    check('getenv("JOBRELAY_CONFIG")' in main_c, "src/cmd/commands.c no longer reads $JOBRELAY_CONFIG")
    check('getenv("PORT")' in serve_c, "src/cmd/serve.c no longer reads $PORT")
    for path in ("/healthz", "/readyz", "/metrics"):
        check('"%s"' % path in httpd_c, "src/io/httpd.c does not answer %s" % path)

    env, expose, user, entrypoint, cmd = dockerfile_runtime(read(os.path.join(src, "Dockerfile")))
    config_path = env.get("JOBRELAY_CONFIG")
    check(config_path == "/etc/jobrelay/jobrelay.yaml",
          "Dockerfile: JOBRELAY_CONFIG is %r, not /etc/jobrelay/jobrelay.yaml" % config_path)
    port = env.get("PORT")
    check(port is not None and expose == port, "Dockerfile: EXPOSE %s but PORT=%s" % (expose, port))
    check(user is not None and not user.startswith("0") and not user.startswith("root"),
          "Dockerfile: runtime USER is %r, not an unprivileged user" % user)
    check(entrypoint == '["/usr/local/bin/jobrelay"]' and cmd == '["serve"]',
          "Dockerfile: ENTRYPOINT %s CMD %s, not jobrelay serve" % (entrypoint, cmd))

    # ---- the service ----
    svc = load(os.path.join(out, "service.yaml"))
    check(svc["apiVersion"] == "serving.knative.dev/v1" and svc["kind"] == "Service",
          "service.yaml: not a serving.knative.dev/v1 Service")
    tmpl = svc["spec"]["template"]
    ann = tmpl["metadata"]["annotations"]
    spec = tmpl["spec"]
    check(spec.get("serviceAccountName") == relay,
          "service.yaml: serviceAccountName %r, not %s" % (spec.get("serviceAccountName"), relay))
    containers = {x.get("name"): x for x in spec["containers"]}
    check(sorted(containers) == ["collector", "jobrelay"],
          "service.yaml: containers %r, not jobrelay and its collector" % sorted(containers))
    c = containers.get("jobrelay") or spec["containers"][0]
    ports = c.get("ports") or []
    check(len(ports) == 1 and str(ports[0].get("containerPort")) == port,
          "service.yaml: containerPort %r, not the image's PORT %s" % (ports, port))
    envs = {e["name"]: e for e in c.get("env", [])}
    check("PORT" not in envs, "service.yaml: sets PORT, which Cloud Run reserves")
    check(envs.get("JOBRELAY_CONFIG", {}).get("value") == config_path,
          "service.yaml: JOBRELAY_CONFIG is not %s" % config_path)
    mount_dir, config_file = os.path.split(config_path)
    mounts = [m for m in c.get("volumeMounts", []) if m.get("mountPath") == mount_dir]
    check(len(mounts) == 1, "service.yaml: nothing mounted at %s" % mount_dir)
    if mounts:
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        vol = vols.get(mounts[0]["name"], {})
        secret = vol.get("secret") or {}
        check(secret.get("secretName") == "jobrelay-config",
              "service.yaml: %s is not the jobrelay-config secret" % mount_dir)
        items = secret.get("items") or []
        check([i.get("path") for i in items] == [config_file],
              "service.yaml: the secret's file is not %s" % config_file)
    check(c.get("args") == [{"push": "serve", "pull": "pull"}[mode]],
          "service.yaml: args %r for mode %s" % (c.get("args"), mode))
    probes = {"startupProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in probes.items():
        get = (c.get(probe) or {}).get("httpGet") or {}
        check(get.get("path") == path and str(get.get("port")) == port,
              "service.yaml: %s is %r, not GET %s on %s" % (probe, get, path, port))
    check(isinstance(spec.get("containerConcurrency"), int) and spec["containerConcurrency"] > 0,
          "service.yaml: containerConcurrency is not a positive number")
    lo = int(ann["autoscaling.knative.dev/minScale"])
    hi = int(ann["autoscaling.knative.dev/maxScale"])
    check(0 <= lo <= hi, "service.yaml: minScale %d maxScale %d" % (lo, hi))
    if mode == "pull":
        check(lo >= 1 and ann.get("run.googleapis.com/cpu-throttling") == "false",
              "service.yaml: a pull worker needs minScale >= 1 and CPU always allocated")
    else:
        check(svc["metadata"]["annotations"].get("run.googleapis.com/ingress") in ("internal", "all"),
              "service.yaml: ingress not set")

    # ---- the metrics sidecar ----
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    col = containers.get("collector") or {}
    check(col.get("image", "").startswith(
        "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:"),
        "service.yaml: the collector is not Google's Managed Prometheus sidecar: %r" % col.get("image"))
    check(not col.get("ports"), "service.yaml: the collector has a port (only jobrelay takes requests)")
    check(yaml.safe_load(ann.get("run.googleapis.com/container-dependencies", "{}")) == {"collector": ["jobrelay"]},
          "service.yaml: the collector does not start after jobrelay (container-dependencies)")
    cmounts = [m for m in col.get("volumeMounts", []) if m.get("mountPath") in ("/etc/rungmp", "/etc/rungmp/")]
    check(len(cmounts) == 1, "service.yaml: nothing mounted at /etc/rungmp in the collector")
    if cmounts:
        sec = (vols.get(cmounts[0]["name"]) or {}).get("secret") or {}
        check(sec.get("secretName") == "jobrelay-metrics-config",
              "service.yaml: /etc/rungmp is not the jobrelay-metrics-config secret")
        check([i.get("path") for i in sec.get("items") or []] == ["config.yaml"],
              "service.yaml: the sidecar's secret file is not config.yaml")
    rungmp = load(os.path.join(out, "rungmp.yaml"))
    check(rungmp.get("apiVersion") == "monitoring.googleapis.com/v1beta" and rungmp.get("kind") == "RunMonitoring",
          "rungmp.yaml: not a monitoring.googleapis.com/v1beta RunMonitoring")
    eps = (rungmp.get("spec") or {}).get("endpoints") or []
    check(len(eps) == 1, "rungmp.yaml: one endpoint expected, not %d" % len(eps))
    for ep in eps:
        # the sidecar reads port as a string (a number or a name); it scrapes 0.0.0.0:PORT
        check(str(ep.get("port")) == port and str(ep.get("port")) == str(ports[0].get("containerPort") if ports else None),
              "rungmp.yaml: scrapes port %r, not jobrelay's containerPort and $PORT %s" % (ep.get("port"), port))
        check(ep.get("path", "/metrics") == "/metrics", "rungmp.yaml: scrapes %r, not /metrics" % ep.get("path"))
        check(re.fullmatch(r"[0-9]+[smh]", str(ep.get("interval", "30s"))) is not None,
              "rungmp.yaml: interval %r is not a Prometheus duration" % ep.get("interval"))

    # ---- jobrelay's config: what the secret holds ----
    cfg = load(os.path.join(out, "jobrelay.yaml"))
    check(cfg.get("project") == project and cfg.get("region") == region,
          "jobrelay.yaml: project/region are %r/%r" % (cfg.get("project"), cfg.get("region")))
    check("file" not in (cfg.get("dead_letter") or {}),
          "jobrelay.yaml: a dead-letter file on Cloud Run's in-memory disk is lost")

    # ---- the job ----
    job = load(os.path.join(out, "job.yaml"))
    check(job["apiVersion"] == "run.googleapis.com/v1" and job["kind"] == "Job",
          "job.yaml: not a run.googleapis.com/v1 Job")
    exe = job["spec"]["template"]
    jann = exe["metadata"]["annotations"]
    check(jann.get("run.googleapis.com/vpc-access-connector")
          == "projects/%s/locations/%s/connectors/jobrelay-conn" % (project, region),
          "job.yaml: not on the VPC connector")
    check(jann.get("run.googleapis.com/vpc-access-egress") == "all-traffic",
          "job.yaml: egress does not go through the connector (Cloud NAT)")
    task = exe["spec"]["template"]["spec"]
    check(task.get("serviceAccountName") == runtime,
          "job.yaml: serviceAccountName %r, not %s" % (task.get("serviceAccountName"), runtime))
    (jc,) = task["containers"]
    jenv = {e["name"]: e for e in jc.get("env", [])}
    entry = read(os.path.join(src, "deploy/job-image/entrypoint.sh"))
    required = re.search(r"^for name in ([A-Z_ ]+)\$", entry, flags=re.M)
    check(required is not None, "entrypoint.sh: the required variables were not found")
    for name in (required.group(1).split() if required else []):
        check(jenv.get(name, {}).get("value"), "job.yaml: %s, which the entrypoint requires, is not set" % name)
    check(jenv.get("PROJECT_ID", {}).get("value") == project and jenv.get("REGION", {}).get("value") == region,
          "job.yaml: PROJECT_ID/REGION are not the project's")
    secrets = [e["valueFrom"]["secretKeyRef"]["name"] for e in jc.get("env", []) if "valueFrom" in e]
    check(secrets == ["job-api-token"], "job.yaml: secrets %r, not the job-api-token secret" % secrets)

    # ---- alert policies ----
    for name, needle in (("alert-job-failure-rate.yaml", "run.googleapis.com/job/completed_execution_count"),
                         ("alert-dead-letters.yaml", 'resource.labels.topic_id = "jobrelay-dead"')):
        pol = load(os.path.join(out, name))
        check(pol.get("displayName", "").startswith("jobrelay: "), "%s: displayName" % name)
        conds = pol.get("conditions") or []
        check(len(conds) == 1, "%s: one condition expected" % name)
        for cond in conds:
            th = cond.get("conditionThreshold") or {}
            check(needle in th.get("filter", ""), "%s: the filter does not watch %s" % (name, needle))
            check(isinstance(th.get("thresholdValue"), (int, float)), "%s: thresholdValue is not a number" % name)
            check(th.get("comparison") == "COMPARISON_GT", "%s: comparison" % name)
    rate = load(os.path.join(out, "alert-job-failure-rate.yaml"))["conditions"][0]["conditionThreshold"]
    check('metric.labels.result = "failed"' in rate["filter"] and "denominatorFilter" in rate,
          "alert-job-failure-rate.yaml: not a ratio of failed to all executions")

    brk = load(os.path.join(out, "alert-breaker-open.yaml"))
    check(brk.get("displayName", "").startswith("jobrelay: "), "alert-breaker-open.yaml: displayName")
    (bc,) = brk.get("conditions") or [{}]
    pq = bc.get("conditionPrometheusQueryLanguage") or {}
    check("jobrelay_breaker_state" in pq.get("query", ""), "alert-breaker-open.yaml: the query does not watch jobrelay_breaker_state")
    check(re.fullmatch(r"[1-9][0-9]*s", pq.get("duration", "")) is not None,
          "alert-breaker-open.yaml: no duration: an alert on a breaker that stays open needs one")

    # ---- Cloud Build ----
    cb = load(os.path.join(src, "deploy/cloudbuild.yaml"))
    steps = {s["id"]: s for s in cb["steps"]}
    check(list(steps) == ["build", "build-job-image", "scan", "push", "deploy"],
          "cloudbuild.yaml: steps are %r" % list(steps))
    scan = " ".join(steps["scan"]["args"])
    check("docker images scan" in scan and "list-vulnerabilities" in scan,
          "cloudbuild.yaml: the scan step does not check the findings")
    push = " ".join(steps["push"]["args"])
    check("docker push \"$$image\"" in push and ":latest" in push,
          "cloudbuild.yaml: the push step does not push the build's tag and :latest")
    check(steps["deploy"]["args"][:3] == ["deploy/gcloud.sh", "--only", "deploy"],
          "cloudbuild.yaml: the deploy step is not deploy/gcloud.sh --only deploy")
    check(steps["build-job-image"]["args"][-1] == "deploy/job-image"
          and os.path.isfile(os.path.join(src, "deploy/job-image/Dockerfile")),
          "cloudbuild.yaml: the job image is not built from deploy/job-image")
    check(cb.get("serviceAccount", "").endswith("/jobrelay-build@$PROJECT_ID.iam.gserviceaccount.com"),
          "cloudbuild.yaml: not run as the jobrelay-build account")

    for f in failures:
        print("FAIL: " + f)
    if not failures:
        print("ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
