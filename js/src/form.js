// A widget's settings form, drawn from the fields Python sends (`setting_fields`, made from
// the settings' one declaration in specdec_jupyter/settings.py): a new setting there shows
// here without a line of JavaScript. A field is { key, kind, label } plus, by kind:
//   number           step, min, max            a number
//   optional number  step, min, placeholder    a number, or null when empty
//   choice           choices                   "auto" or a number
//   options          choices                   one of the strings
//   checkbox                                   true or false
//   text                                       a string
//   lines                                      a list of strings, one a line (stop strings;
//                                              \n in a line is a newline, \\ a backslash)
import { el } from "./dom.js";

/** The control of one field, tagged with `data-setting` = its key. */
export function settingControl(doc, field) {
  const dataset = { setting: field.key };
  if (field.kind === "choice" || field.kind === "options") {
    return el(doc, "select", { dataset }, field.choices.map((c) => el(doc, "option", { value: String(c), textContent: String(c) })));
  }
  if (field.kind === "text" || field.kind === "lines") return el(doc, "textarea", { rows: 2, dataset });
  if (field.kind === "checkbox") return el(doc, "input", { type: "checkbox", dataset });
  const props = { type: "number", dataset };
  for (const key of ["step", "min", "max", "placeholder"]) if (field[key] !== undefined) props[key] = String(field[key]);
  return el(doc, "input", props);
}

/** One setting read back from its control, typed as the Python side expects. */
export function readSetting(field, control) {
  const value = control.value;
  switch (field.kind) {
    case "checkbox":
      return control.checked;
    case "choice":
      return value === "auto" ? "auto" : Number(value);
    case "options":
      return value;
    case "number":
      return Number(value);
    case "optional number":
      return value.trim() === "" ? null : Number(value);
    case "lines":
      return value.split("\n").filter((line) => line !== "").map(unescapeLine);
    default:
      return value;
  }
}

/** Show a setting's value in its control. */
export function writeSetting(field, control, value) {
  if (field.kind === "checkbox") control.checked = Boolean(value);
  else if (field.kind === "lines") control.value = (value ?? []).map(escapeLine).join("\n");
  else control.value = value === undefined || value === null ? "" : String(value);
}

/** A string on one line: a newline as \n, a backslash as \\. */
export function escapeLine(text) {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** `escapeLine` undone. */
export function unescapeLine(line) {
  return line.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
}

/** The form: a labelled control per field; returns the labels (to place) and the controls by key. */
export function settingsForm(doc, fields) {
  const controls = {};
  const labels = fields.map((field) => {
    controls[field.key] = settingControl(doc, field);
    return el(doc, "label", { className: "specdec-field" }, [el(doc, "span", { textContent: field.label }), controls[field.key]]);
  });
  return { labels, controls };
}

/** Every field's value, read from the form. */
export function readSettings(fields, controls) {
  return Object.fromEntries(fields.map((field) => [field.key, readSetting(field, controls[field.key])]));
}
