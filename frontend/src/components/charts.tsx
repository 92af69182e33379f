/** Dependency-free SVG charts. Each has a text summary for screen readers and a data table behind a disclosure. */
import { useEffect, useId, useRef, useState, type ReactNode, type RefObject } from "react";
import { DataTable } from "./DataTable";

export interface Series {
  name: string;
  values: (number | null)[];
  /** CSS class that sets the colour (see styles.css .series-*). */
  tone: "a" | "b" | "c";
}

const H = 220;
const PAD = { l: 48, r: 12, t: 12, b: 28 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  const n = v / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

/** Counts get whole-number ticks (0, 1, 2… not 0, 0.25, 0.5…). */
function integerMax(v: number): number {
  const step = Math.max(1, Math.ceil(v / 4));
  const mag = 10 ** Math.floor(Math.log10(step));
  const nice = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= step) ?? step;
  return nice * 4;
}

function ticks(max: number, count = 4): number[] {
  return Array.from({ length: count + 1 }, (_, i) => (max / count) * i);
}

/** The chart draws at its real pixel width, so text and strokes are never stretched. */
function useWidth(): [RefObject<HTMLDivElement>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [w, setW] = useState(640);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver((e) => setW(Math.max(240, Math.floor(e[0].contentRect.width))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, w];
}

function xLabelEvery(n: number, width: number): number {
  return Math.max(1, Math.ceil(n / Math.max(2, Math.floor(width / 70))));
}

interface ChartProps {
  title: string;
  /** Whole-number values (counts): whole-number axis ticks. */
  integer?: boolean;
  labels: string[];
  series: Series[];
  format?: (v: number) => string;
  /** Fixed y maximum (e.g. 1 for rates). */
  yMax?: number;
  summary: string;
}

function Frame({ title, labels, series, format = String, summary, children, max, W, boxRef }: ChartProps & {
  children: ReactNode;
  max: number;
  W: number;
  boxRef: RefObject<HTMLDivElement>;
}) {
  const [showTable, setShowTable] = useState(false);
  const id = useId();
  const plotH = H - PAD.t - PAD.b;
  const every = xLabelEvery(labels.length, W);
  const step = (W - PAD.l - PAD.r) / Math.max(1, labels.length);
  return (
    <figure className="chart" aria-labelledby={`${id}-cap`}>
      <figcaption id={`${id}-cap`} className="chart-title">{title}</figcaption>
      <div className="chart-legend" aria-hidden="true">
        {series.map((s) => (
          <span key={s.name} className={`legend-item series-${s.tone}`}>
            <span className="legend-swatch" />
            {s.name}
          </span>
        ))}
      </div>
      <div ref={boxRef} className="chart-box">
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={`${title}. ${summary}`} className="chart-svg">
        {ticks(max).map((t) => {
          const y = PAD.t + plotH - (t / max) * plotH;
          return (
            <g key={t} className="chart-grid">
              <line x1={PAD.l} x2={W - PAD.r} y1={y} y2={y} />
              <text x={PAD.l - 6} y={y + 4} textAnchor="end">{format(t)}</text>
            </g>
          );
        })}
        {labels.map((l, i) =>
          i % every === 0 ? (
            <text key={l + i} className="chart-xlabel" x={PAD.l + step * i + step / 2} y={H - 8} textAnchor="middle">
              {l}
            </text>
          ) : null,
        )}
        {children}
      </svg>
      </div>
      <button type="button" className="link-btn small" aria-expanded={showTable} onClick={() => setShowTable((s) => !s)}>
        {showTable ? "Hide" : "Show"} data table
      </button>
      {showTable && (
        <DataTable caption={title} className="table-compact" columns={["Day", ...series.map((s) => s.name)]}>
          {labels.map((l, i) => (
            <tr key={l + i}>
              <th scope="row">{l}</th>
              {series.map((s) => <td key={s.name}>{s.values[i] == null ? "—" : format(s.values[i]!)}</td>)}
            </tr>
          ))}
        </DataTable>
      )}
    </figure>
  );
}

/** Grouped or stacked bars. */
export function BarChart(props: ChartProps & { stacked?: boolean }) {
  const { labels, series, stacked, yMax } = props;
  const [boxRef, W] = useWidth();
  const totals = labels.map((_, i) =>
    stacked ? series.reduce((a, s) => a + (s.values[i] ?? 0), 0) : Math.max(0, ...series.map((s) => s.values[i] ?? 0)),
  );
  const max = yMax ?? (props.integer ? integerMax : niceMax)(Math.max(0, ...totals));
  const plotH = H - PAD.t - PAD.b;
  const step = (W - PAD.l - PAD.r) / Math.max(1, labels.length);
  const barW = Math.max(2, Math.min(step * 0.7, 120));
  return (
    <Frame {...props} max={max} W={W} boxRef={boxRef}>
      {labels.map((l, i) => {
        let base = 0;
        return (
          <g key={l + i}>
            {series.map((s, k) => {
              const v = s.values[i] ?? 0;
              const h = (v / max) * plotH;
              const w = stacked ? barW : barW / series.length;
              const x = PAD.l + step * i + (step - barW) / 2 + (stacked ? 0 : w * k);
              const y = PAD.t + plotH - h - (stacked ? (base / max) * plotH : 0);
              if (stacked) base += v;
              return (
                <rect key={s.name} className={`bar series-${s.tone}`} x={x} y={y} width={w} height={Math.max(0, h)} rx={1}>
                  <title>{`${l} · ${s.name}: ${props.format ? props.format(v) : v}`}</title>
                </rect>
              );
            })}
          </g>
        );
      })}
    </Frame>
  );
}

export function LineChart(props: ChartProps) {
  const { labels, series, yMax } = props;
  const [boxRef, W] = useWidth();
  const all = series.flatMap((s) => s.values.filter((v): v is number => v != null));
  const max = yMax ?? (props.integer ? integerMax : niceMax)(Math.max(0, ...all));
  const plotH = H - PAD.t - PAD.b;
  const step = (W - PAD.l - PAD.r) / Math.max(1, labels.length);
  const x = (i: number) => PAD.l + step * i + step / 2;
  const y = (v: number) => PAD.t + plotH - (v / max) * plotH;
  return (
    <Frame {...props} max={max} W={W} boxRef={boxRef}>
      {series.map((s) => {
        // Gaps (days without data) break the line instead of dropping to zero.
        const segments: string[] = [];
        let cur = "";
        s.values.forEach((v, i) => {
          if (v == null) {
            if (cur) segments.push(cur);
            cur = "";
          } else cur += `${cur ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        });
        if (cur) segments.push(cur);
        return (
          <g key={s.name} className={`line series-${s.tone}`}>
            {segments.map((d, k) => <path key={k} d={d} fill="none" />)}
            {s.values.map((v, i) =>
              v == null ? null : (
                <circle key={i} cx={x(i)} cy={y(v)} r={labels.length > 40 ? 1.5 : 3}>
                  <title>{`${labels[i]} · ${s.name}: ${props.format ? props.format(v) : v}`}</title>
                </circle>
              ),
            )}
          </g>
        );
      })}
    </Frame>
  );
}

export interface RankedItem {
  label: string;
  value: number;
}

/** Horizontal bars, largest first (cost per agent, per campaign): plain HTML, so long names wrap and read out. */
export function RankedBars({ title, items, format = String, summary, limit = 10 }: {
  title: string;
  items: RankedItem[];
  format?: (v: number) => string;
  summary: string;
  /** Shown bars; the rest are summed into one "Other" row. */
  limit?: number;
}) {
  const id = useId();
  const sorted = [...items].sort((a, b) => b.value - a.value);
  const shown = sorted.slice(0, limit);
  const rest = sorted.slice(limit).reduce((a, i) => a + i.value, 0);
  if (rest > 0) shown.push({ label: `Other (${sorted.length - limit})`, value: rest });
  const max = Math.max(0, ...shown.map((i) => i.value)) || 1;
  return (
    <figure className="chart" aria-labelledby={`${id}-cap`} aria-describedby={`${id}-sum`}>
      <figcaption id={`${id}-cap`} className="chart-title">{title}</figcaption>
      <p id={`${id}-sum`} className="sr-only">{summary}</p>
      {shown.length === 0 ? (
        <p className="muted">No costed calls.</p>
      ) : (
        <ul className="ranked-bars">
          {shown.map((item) => (
            <li key={item.label}>
              <span className="ranked-label">{item.label}</span>
              <span className="ranked-track" aria-hidden="true">
                <span className="ranked-bar series-a" style={{ width: `${(item.value / max) * 100}%` }} />
              </span>
              <span className="ranked-value">{format(item.value)}</span>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}
