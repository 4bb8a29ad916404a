// How every command prints results (--format): tables for people, CSV for spreadsheets, JSON for
// machines. Table cells are escaped (registry/src/text.ts), so a registry value cannot add
// lines, colours or cursor movements to what an operator reads; CSV cells cannot carry formulas.
import { Option } from "commander";
import { printable } from "@vllm-fleet/registry";
import type { ScriptIo } from "./cli";

export type Format = "table" | "json" | "csv";

/** `--format <format>`, one of `formats` (the first is the default). */
export function formatOption(formats: readonly Format[]): Option {
  return new Option("--format <format>", "output format")
    .choices(formats as Format[])
    .default(formats[0]);
}

/**
 * Prints a result in `format`: JSON exactly as given (what scripts parse), else its text. A
 * command offering `--format csv` gives `csv`; without it, CSV prints the text.
 */
export function printResult(
  io: ScriptIo,
  format: Format,
  result: { json: unknown; text: () => string; csv?: () => string },
): void {
  if (format === "json") io.out(JSON.stringify(result.json, null, 2));
  else io.out(format === "csv" && result.csv ? result.csv() : result.text());
}

/**
 * Left-aligned columns separated by two spaces (plain text, easy to grep); every cell is
 * escaped, so a value cannot break out of its cell, its row or the table.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const cells = [headers, ...rows].map((r) => r.map((c) => printable(c)));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * Cells a spreadsheet would evaluate as a formula (OWASP "CSV Injection",
 * https://owasp.org/www-community/attacks/CSV_Injection, and ASVS 5.0 V1.2.10): a leading
 * '=', '+', '-', '@', tab, carriage return or NUL.
 */
const FORMULA_START = /^[=+\-@\t\r\0]/;

/**
 * One CSV cell: a formula cell gets a leading `'` (shown as text), and a cell with a quote,
 * comma or line break, or a neutralised one, is quoted with inner quotes doubled (RFC 4180,
 * section 2, rules 6 and 7). The value is otherwise exact.
 */
export function csvCell(value: string): string {
  const cell = FORMULA_START.test(value) ? `'${value}` : value;
  return cell !== value || /[",\n\r]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

/** A header row and data rows as CSV, every cell through csvCell. */
export function formatCsv(headers: string[], rows: string[][]): string {
  return [headers, ...rows].map((r) => r.map(csvCell).join(",")).join("\n");
}

/** An ISO 8601 time to the minute, as table cells show it (`2025-01-31 14:05`); none: empty. */
export function minuteCell(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 16).replace("T", " ") : "";
}
