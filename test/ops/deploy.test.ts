import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

// The ops material of deploy/: the Prometheus config and alert rules as the real promtool reads them
// (Debian's prometheus package; .ci/run installs it), the alerts' unit tests, and the Grafana
// dashboard held to the metric table of the README's "Operating" section.

const root = fileURLToPath(new URL("../..", import.meta.url))
const read = (file: string) => Fs.readFileSync(Path.join(root, file), "utf8")

const promtool = (args: ReadonlyArray<string>, cwd = root) => {
  const run = spawnSync("promtool", args, { cwd, encoding: "utf8", timeout: 60_000 })
  if (run.error) {
    throw new Error(
      `promtool could not be run (${run.error.message}): install Debian's prometheus package ` +
        "(apt-get install --no-install-recommends prometheus; .ci/run does when it is missing)"
    )
  }
  return { status: run.status, output: `promtool ${args.join(" ")}\n${run.stdout}${run.stderr}` }
}

// --- the README's metric table ------------------------------------------------------------------

type Metric = { readonly name: string; readonly type: "counter" | "gauge" | "histogram" }

/** The rows of the `Metric | Type | Labels | Meaning` table in the README's "Operating" section. */
const documentedMetrics = (readme: string): ReadonlyArray<Metric> => {
  const section = readme.split(/^## /m).find((part) => part.startsWith("Operating\n"))
  if (section === undefined) throw new Error("README has no \"## Operating\" section")
  const cells = (line: string) => line.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((cell) => cell.trim())
  const lines = section.split("\n")
  const header = lines.findIndex((line) => line.startsWith("|") && cells(line).join("|") === "Metric|Type|Labels|Meaning")
  if (header < 0) throw new Error("README \"Operating\" has no `| Metric | Type | Labels | Meaning |` table")
  const metrics: Array<Metric> = []
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break
    const [metric = "", type = "", , meaning = ""] = cells(line)
    const name = /^`([a-zA-Z_:][a-zA-Z0-9_:]*)`$/.exec(metric)?.[1]
    if (name === undefined) throw new Error(`README metric row without exactly one \`name\` first: ${line}`)
    if (type !== "counter" && type !== "gauge" && type !== "histogram") throw new Error(`README metric row with type "${type}": ${line}`)
    if (meaning === "") throw new Error(`README metric row without a meaning: ${line}`)
    metrics.push({ name, type })
  }
  return metrics
}

/** The series names a scrape holds for the documented metrics (a histogram is its _bucket, _sum, _count). */
const seriesNames = (metrics: ReadonlyArray<Metric>) =>
  new Set(metrics.flatMap(({ name, type }) =>
    type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]
  ))

// --- PromQL --------------------------------------------------------------------------------------

const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "inf", "nan"])

/** The metric names a PromQL expression (or a Grafana one, with $variables) selects. */
const metricNames = (expr: string): ReadonlyArray<string> => {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, "\"\"") // strings
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "") // label lists
    .replace(/\$\{[^}]*\}|\$\w+/g, "") // Grafana variables
  const names: Array<string> = []
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0]
    const before = bare[match.index - 1] ?? ""
    if (/[0-9.]/.test(before)) continue // 5m, 1e3
    if (bare.slice(match.index + word.length).trimStart().startsWith("(")) continue // a function or aggregation
    if (keywords.has(word.toLowerCase())) continue
    names.push(word)
  }
  return names
}

/** Every `expr:` of a Prometheus rule file, single-line or block (`expr: |`). */
const ruleExpressions = (rules: string): ReadonlyArray<string> => {
  const lines = rules.split("\n")
  const exprs: Array<string> = []
  lines.forEach((line, i) => {
    const match = /^(\s*)expr:\s*(.*)$/.exec(line)
    if (match === null) return
    const [, indent = "", rest = ""] = match
    if (!/^[|>]/.test(rest)) return void exprs.push(rest.replace(/^(['"])(.*)\1$/, "$2"))
    const block: Array<string> = []
    for (const next of lines.slice(i + 1)) {
      if (next.trim() !== "" && next.search(/\S/) <= indent.length) break
      block.push(next)
    }
    exprs.push(block.join("\n"))
  })
  return exprs
}

// --- the dashboard ------------------------------------------------------------------------------

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/** Every value of a `datasource` key anywhere in the JSON, with where it is. */
const datasources = (json: Json, at = "$"): ReadonlyArray<readonly [string, Json]> => {
  if (json === null || typeof json !== "object") return []
  if (Array.isArray(json)) return json.flatMap((item, i) => datasources(item as Json, `${at}[${i}]`))
  return Object.entries(json as { readonly [key: string]: Json }).flatMap(([key, value]) => [
    ...(key === "datasource" ? [[`${at}.datasource`, value] as const] : []),
    ...datasources(value, `${at}.${key}`)
  ])
}

type Panel = {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly datasource?: Json
  readonly targets?: ReadonlyArray<{ readonly expr?: string; readonly refId: string; readonly datasource?: Json }>
  readonly panels?: ReadonlyArray<Panel>
}

const allPanels = (panels: ReadonlyArray<Panel>): ReadonlyArray<Panel> =>
  panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])])

/** The expressions a dashboard queries: its panels' targets and its query variables. */
const dashboardExpressions = (dashboard: {
  readonly panels: ReadonlyArray<Panel>
  readonly templating?: { readonly list: ReadonlyArray<{ readonly name: string; readonly type: string; readonly query?: Json }> }
}): ReadonlyArray<readonly [string, string]> => [
  ...allPanels(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).map((target) => [`panel "${panel.title}" ${target.refId}`, target.expr ?? ""] as const)
  ),
  ...(dashboard.templating?.list ?? []).filter((variable) => variable.type === "query").map((variable) => {
    const query = typeof variable.query === "string"
      ? variable.query
      : String((variable.query as { readonly query?: string } | null)?.query ?? "")
    // label_values(metric, label) / label_values(label): the label is no metric; query_result(expr) is PromQL.
    const labelValues = /^label_values\(\s*(?:(.*),\s*)?[a-zA-Z_]\w*\s*\)$/.exec(query.trim())
    return [`variable "${variable.name}"`, labelValues ? labelValues[1] ?? "" : query] as const
  })
]

const provisionedDatasource = () => {
  const file = read("deploy/grafana/provisioning/datasources/prometheus.yml")
  const uid = /^\s+uid:\s*"?([\w-]+)"?\s*$/m.exec(file)?.[1]
  const type = /^\s+type:\s*"?([\w-]+)"?\s*$/m.exec(file)?.[1]
  if (uid === undefined || type === undefined) throw new Error("the provisioned data source has no uid or type")
  return { type, uid }
}

const dashboardFile = "deploy/grafana/dashboards/trainer-chat.json"

describe("deploy/ (Prometheus, alerts, Grafana)", () => {
  const documented = documentedMetrics(read("README.md"))
  const known = seriesNames(documented)

  it("the README's metric table: one row per metric, named as Prometheus wants", () => {
    expect(documented.length).toBeGreaterThanOrEqual(30)
    expect(new Set(documented.map((m) => m.name)).size).toBe(documented.length)
    for (const { name, type } of documented) {
      // Counters end in _total; nothing else may (promtool check metrics refuses such gauges).
      expect(name.endsWith("_total"), `${name} (${type})`).toBe(type === "counter")
    }
    for (const name of ["chat_send_duration_seconds", "chat_redis_connected", "chat_ready", "chat_db_pool_connections", "chat_error_frames_total"]) {
      expect(documented.map((m) => m.name)).toContain(name)
    }
  })

  it("metricNames finds what a PromQL expression selects, and nothing else", () => {
    expect(metricNames(
      "histogram_quantile(0.99, sum by (door, le) (rate(chat_send_duration_seconds_bucket{instance=~\"$instance\",le!=\"x y\"}[$__rate_interval])))"
    )).toEqual(["chat_send_duration_seconds_bucket"])
    expect(metricNames(
      "sum by (code) (rate(chat_error_frames_total{code=~\"A|B\"}[5m])) / ignoring (code) group_left sum(rate(chat_frames_received_totl[5m] offset 1h)) > 0.01"
    )).toEqual(["chat_error_frames_total", "chat_frames_received_totl"])
    expect(metricNames("time() - max by (instance) (process_start_time_seconds) > bool 1e3")).toEqual(["process_start_time_seconds"])
    expect(metricNames("up{job=\"trainer-chat\"} == 0")).toEqual(["up"])
  })

  it("promtool check config: deploy/prometheus.yml and the rule files it loads", () => {
    const run = promtool(["check", "config", "deploy/prometheus.yml"])
    expect(run.status, run.output).toBe(0)
    expect(run.output).toMatch(/SUCCESS: 1 rule files found/)
  })

  it("promtool check rules: deploy/alerts.yml", () => {
    const run = promtool(["check", "rules", "deploy/alerts.yml"])
    expect(run.status, run.output).toBe(0)
    expect(run.output).toMatch(/SUCCESS: \d+ rules found/)
  })

  it("promtool test rules: the alerts fire on their synthetic series and stay silent otherwise", () => {
    const run = promtool(["test", "rules", "deploy/alerts.test.yml"])
    expect(run.status, run.output).toBe(0)

    // What the unit tests cover: every alertname they name exists, and the alerts that must be tested
    // have a case where they fire and one where they do not.
    const alerts = [...read("deploy/alerts.yml").matchAll(/^\s*- alert:\s*(\w+)\s*$/gm)].map((m) => m[1])
    const cases = read("deploy/alerts.test.yml").split(/^\s*- eval_time:/m).slice(1).map((block) => ({
      alert: /^\s*alertname:\s*(\w+)\s*$/m.exec(block)?.[1],
      fires: /exp_labels:/.test(block)
    }))
    for (const { alert } of cases) expect(alerts).toContain(alert)
    for (const alert of ["ChatRedisDown", "ChatInstanceNotReady", "ChatAckLatencyHigh", "ChatInstanceDown", "ChatDbPoolSaturated"]) {
      expect(cases.filter((c) => c.alert === alert && c.fires).length, `${alert} firing`).toBeGreaterThan(0)
      expect(cases.filter((c) => c.alert === alert && !c.fires).length, `${alert} silent`).toBeGreaterThan(0)
    }
  })

  it("promtool test rules fails when an alert does not do what its test says", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "alerts-"))
    try {
      Fs.copyFileSync(Path.join(root, "deploy/alerts.yml"), Path.join(dir, "alerts.yml"))
      Fs.writeFileSync(
        Path.join(dir, "wrong.test.yml"),
        [
          "rule_files: [alerts.yml]",
          "tests:",
          "  - interval: 1m",
          "    input_series:",
          "      - series: 'chat_redis_connected{instance=\"app-1\",connection=\"commands\"}'",
          "        values: \"0x10\"",
          "    alert_rule_test:",
          "      - eval_time: 5m",
          "        alertname: ChatRedisDown",
          "        exp_alerts: []",
          ""
        ].join("\n")
      )
      const run = promtool(["test", "rules", "wrong.test.yml"], dir)
      expect(run.status, run.output).not.toBe(0)
      expect(run.output).toMatch(/ChatRedisDown/)
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the alert rules use only documented metrics (and Prometheus' own `up`)", () => {
    const exprs = ruleExpressions(read("deploy/alerts.yml"))
    expect(exprs.length).toBeGreaterThanOrEqual(6)
    for (const expr of exprs) {
      const names = metricNames(expr)
      expect(names.length, expr).toBeGreaterThan(0)
      for (const name of names) expect(name === "up" || known.has(name), `${name} in alert ${expr}`).toBe(true)
    }
  })

  it("Prometheus scrapes every replica of docker-compose.yml on its metrics port, which compose never publishes", () => {
    const compose = read("docker-compose.yml")
    const prometheus = read("deploy/prometheus.yml")
    const replicas = [...compose.matchAll(/^ {2}(app-\d+):\s*$/gm)].map((m) => m[1])
    expect(replicas.length).toBeGreaterThanOrEqual(2)
    const targets = [...prometheus.matchAll(/^\s*-\s*"?([\w.-]+:\d+)"?\s*$/gm)].map((m) => m[1])
    for (const replica of replicas) expect(targets).toContain(`${replica}:9464`)
    expect(prometheus).toMatch(/^rule_files:\s*\n\s+- alerts\.yml\s*$/m)
    // The replicas listen for Prometheus on the compose network, and 9464 appears nowhere else (no ports: entry).
    expect(compose).toMatch(/^ {4}METRICS_HOST: 0\.0\.0\.0$/m)
    expect(compose).toMatch(/^ {4}METRICS_PORT: 9464$/m)
    const uses = compose.split("\n").filter((line) => line.includes("9464") && !line.trim().startsWith("#"))
    expect(uses).toEqual(["    METRICS_PORT: 9464"])
  })

  it("the dashboard queries only documented metrics, through the provisioned data source", () => {
    const dashboard = JSON.parse(read(dashboardFile))
    const datasource = provisionedDatasource()
    expect(datasource.type).toBe("prometheus")

    const panels = allPanels(dashboard.panels).filter((panel) => panel.type !== "row")
    expect(panels.length).toBeGreaterThanOrEqual(20)
    expect(new Set(allPanels(dashboard.panels).map((panel) => panel.id)).size).toBe(allPanels(dashboard.panels).length)
    for (const panel of panels) {
      expect(panel.targets?.length ?? 0, `panel "${panel.title}" has queries`).toBeGreaterThan(0)
      expect(panel.datasource, `panel "${panel.title}"`).toEqual(datasource)
    }
    for (const [where, value] of datasources(dashboard)) expect(value, where).toEqual(datasource)

    const exprs = dashboardExpressions(dashboard)
    const unknown: Array<string> = []
    for (const [where, expr] of exprs) {
      const names = metricNames(expr)
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0)
      for (const name of names) if (!known.has(name)) unknown.push(`${name} (${where})`)
    }
    expect(unknown, "metric names not in the README's table").toEqual([])

    // The panels are there: ack latency, the message path, HTTP, connections, Redis, the pool, the runtime.
    const used = new Set(exprs.flatMap(([, expr]) => metricNames(expr)))
    for (
      const name of [
        "chat_send_duration_seconds_bucket", "chat_messages_sent_total", "chat_delivery_lag_seconds_bucket",
        "chat_bus_lag_seconds_bucket", "chat_append_batch_size_bucket", "chat_append_duration_seconds_bucket",
        "chat_http_request_duration_seconds_count", "chat_http_refused_total", "chat_connections",
        "chat_connections_closed_total", "chat_error_frames_total", "chat_slow_consumers_total", "chat_redis_connected",
        "chat_bus_published_total", "chat_bus_received_total", "chat_db_pool_connections", "chat_rate_limited_total",
        "chat_push_jobs_total", "chat_webhook_deliveries_total", "nodejs_eventloop_lag_p99_seconds",
        "nodejs_eventloop_utilization", "nodejs_gc_duration_seconds_sum", "nodejs_heap_size_used_bytes",
        "process_resident_memory_bytes"
      ]
    ) expect(used, name).toContain(name)
  })

  it("Grafana provisions the dashboards' directory as compose mounts it", () => {
    const compose = read("docker-compose.yml")
    const provider = read("deploy/grafana/provisioning/dashboards/dashboards.yml")
    const path = /^\s+path:\s*(\S+)\s*$/m.exec(provider)?.[1]
    expect(path).toBeDefined()
    expect(compose).toContain(`./deploy/grafana/dashboards:${path}:ro`)
    expect(compose).toContain("./deploy/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro")
    expect(compose).toMatch(/profiles: \[monitoring\]/)
  })
})
