/** Strict checks of the console's action request bodies: unknown keys and wrong types are refused. */
import { InvalidArgumentError } from "../core/errors.js";

/** The type each allowed key must have. */
export type FieldKind = "string" | "boolean" | "count" | "days";

const KIND_TEXT: Record<FieldKind, string> = {
  string: "a non-empty string",
  boolean: "true or false",
  count: "a whole number from 1 to 1000000",
  days: "a non-negative number of days",
};

function fits(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof value === "string" && value.length > 0 && value.length <= 1024;
    case "boolean":
      return typeof value === "boolean";
    case "count":
      return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 1_000_000;
    case "days":
      return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 1_000_000;
  }
}

/**
 * The body as an object whose keys are all in `fields`, each of its kind (every key optional:
 * the caller says which combinations it needs); `InvalidArgumentError` otherwise.
 */
export function checkBody(body: unknown, fields: Record<string, FieldKind>): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new InvalidArgumentError("the request body must be a JSON object");
  const allowed = Object.keys(fields);
  for (const [key, value] of Object.entries(body)) {
    const kind = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (kind === undefined) {
      throw new InvalidArgumentError(
        `unknown field ${JSON.stringify(key.slice(0, 64))} in the request body (allowed: ${allowed.join(", ")})`,
      );
    }
    if (!fits(kind, value)) throw new InvalidArgumentError(`field ${key} must be ${KIND_TEXT[kind]}`);
  }
  return body as Record<string, unknown>;
}
