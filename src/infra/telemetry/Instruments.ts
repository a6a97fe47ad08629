/**
 * Counters and histograms for the message path. Recording is a field update (a histogram's, after a scan of
 * its bounds): no allocation, no hashing of labels, which prom-client does on every recording, even through a
 * child. Callers on the message path take their label set's cell once (`cell`) and keep it; the families are
 * written in Prometheus' text format when scraped, beside the rest of the registry (prom-client's gauges and
 * Node runtime metrics).
 */

export class CounterCell {
  value = 0
}

export class HistogramCell {
  /** Observations per bucket (not cumulative); the last is above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(private readonly bounds: ReadonlyArray<number>) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]! += 1
    this.sum += value
    this.count += 1
  }
}

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A metric and its label sets' cells. */
abstract class Family<C> {
  private readonly cells = new Map<string, { readonly values: ReadonlyArray<string>; readonly cell: C }>()

  constructor(readonly name: string, readonly help: string, readonly labelNames: ReadonlyArray<string>) {}

  protected abstract make(): C
  protected abstract samples(labels: string, cell: C): Array<string>
  protected abstract readonly type: "counter" | "histogram"

  /** The cell of these label values (one per label name), made on first use; keep it where it is hot. */
  cell(...values: ReadonlyArray<string>): C {
    const key = values.join("\u0000")
    let found = this.cells.get(key)
    if (found === undefined) {
      found = { values, cell: this.make() }
      this.cells.set(key, found)
    }
    return found.cell
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`]
    for (const { cell, values } of this.cells.values()) lines.push(...this.samples(this.labelsOf(values), cell))
    return lines.join("\n")
  }

  private labelsOf(values: ReadonlyArray<string>) {
    return values.map((value, i) => `${this.labelNames[i]}="${escapeLabel(value)}"`).join(",")
  }
}

export class Counter extends Family<CounterCell> {
  protected readonly type = "counter"
  protected make() {
    return new CounterCell()
  }
  protected samples(labels: string, cell: CounterCell) {
    return [`${this.name}${labels === "" ? "" : `{${labels}}`} ${cell.value}`]
  }
}

export class Histogram extends Family<HistogramCell> {
  protected readonly type = "histogram"

  constructor(name: string, help: string, private readonly bounds: ReadonlyArray<number>, labelNames: ReadonlyArray<string> = []) {
    super(name, help, labelNames)
  }

  protected make() {
    return new HistogramCell(this.bounds)
  }

  protected samples(labels: string, cell: HistogramCell) {
    const prefix = labels === "" ? "" : `${labels},`
    const around = labels === "" ? "" : `{${labels}}`
    const lines: Array<string> = []
    let cumulative = 0
    this.bounds.forEach((bound, i) => {
      cumulative += cell.counts[i]!
      lines.push(`${this.name}_bucket{${prefix}le="${bound}"} ${cumulative}`)
    })
    lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${cell.count}`)
    lines.push(`${this.name}_sum${around} ${cell.sum}`)
    lines.push(`${this.name}_count${around} ${cell.count}`)
    return lines
  }
}
