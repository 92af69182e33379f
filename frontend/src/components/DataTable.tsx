import type { ReactNode } from "react";

/** A column heading: text, a label only screen readers hear (`{ hidden: "Actions" }`), or `false`/`null` for a
 * column that is not shown (e.g. `admin && { hidden: "Actions" }`). */
export type Column = string | { hidden: string } | false | null | undefined;

/** The one table every list page uses: a scrolling wrapper, a caption (for screen readers unless `showCaption`),
 * one header row from `columns`, and the rows the page renders as `children`. */
export function DataTable({ caption, columns, children, showCaption = false, className, wrapClassName }: {
  caption: ReactNode;
  columns: Column[];
  children: ReactNode;
  showCaption?: boolean;
  className?: string;
  wrapClassName?: string;
}) {
  return (
    <div className={wrapClassName ? `table-wrap ${wrapClassName}` : "table-wrap"}>
      <table className={className ? `table ${className}` : "table"}>
        <caption className={showCaption ? undefined : "sr-only"}>{caption}</caption>
        <thead>
          <tr>
            {columns.map((column, index) =>
              !column ? null : typeof column === "string" ? (
                <th key={index} scope="col">{column}</th>
              ) : (
                <th key={index} scope="col"><span className="sr-only">{column.hidden}</span></th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
