/**
 * Deterministic, realistic benchmark payloads: energy meter readings as a pipeline stage would
 * emit them. Varied values (not one repeated string) so that JSON encoding, hashing and any
 * compression see the kind of data users store, and the same seed gives the same bytes on
 * every machine so results stay comparable between runs.
 */

/** One record of a payload. */
export interface MeterReading {
  id: string;
  timestamp: string;
  site: string;
  meter: string;
  kwh: number;
  co2e: number;
  tags: string[];
}

/** A payload: the records and the size of their `JSON.stringify` text. */
export interface Payload {
  /** Short key used in run ids and result files (`10kb`). */
  key: string;
  /** Label for tables (`10 KB`). */
  label: string;
  records: MeterReading[];
  /** Bytes of `JSON.stringify(records)` at generation time. */
  jsonBytes: number;
}

/** mulberry32: a tiny seeded PRNG, good enough for test data and identical everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SITES = ["berlin-dc1", "lyon-plant-2", "austin-hq", "osaka-warehouse", "sao-paulo-lab", "oslo-office"];
const TAGS = [
  "hvac",
  "lighting",
  "compressor",
  "estimated",
  "validated",
  "peak",
  "off-peak",
  "solar",
  "grid",
];
// Grid carbon intensity in kg CO2e per kWh differs per site; a fixed table keeps values plausible.
const INTENSITY = [0.38, 0.06, 0.42, 0.47, 0.09, 0.02];
const START = Date.UTC(2024, 0, 1);
const QUARTER_HOUR = 15 * 60 * 1000;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Generates readings until their JSON text reaches `targetBytes`. */
export function makeReadings(targetBytes: number, seed = 20240101): MeterReading[] {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const records: MeterReading[] = [];
  let bytes = 2; // "[]"
  while (bytes < targetBytes) {
    const i = records.length;
    const siteIndex = Math.floor(random() * SITES.length);
    const kwh = round3(random() * 750);
    const tagCount = 1 + Math.floor(random() * 3);
    const tags = [...new Set(Array.from({ length: tagCount }, () => pick(TAGS)))];
    const record: MeterReading = {
      id: `rd-${String(i).padStart(8, "0")}`,
      timestamp: new Date(START + i * QUARTER_HOUR + Math.floor(random() * 60_000)).toISOString(),
      site: SITES[siteIndex] as string,
      meter: `M-${siteIndex}${String(Math.floor(random() * 10_000)).padStart(4, "0")}`,
      kwh,
      co2e: round3(kwh * (INTENSITY[siteIndex] as number) * (0.9 + random() * 0.2)),
      tags,
    };
    bytes += JSON.stringify(record).length + (i > 0 ? 1 : 0);
    records.push(record);
  }
  return records;
}

/** The payloads every store is measured with. */
export function standardPayloads(): Payload[] {
  return [
    { key: "10kb", label: "10 KB", bytes: 10 * 1024 },
    { key: "1mb", label: "1 MB", bytes: 1024 * 1024 },
  ].map(({ key, label, bytes }) => {
    const records = makeReadings(bytes);
    return { key, label, records, jsonBytes: JSON.stringify(records).length };
  });
}

/**
 * Makes the payload differ from every earlier sample by changing one number in place. cairn
 * stores an output once per run by content hash, so writing identical bytes twice would measure
 * a skipped write; the raw floor gets the same mutated payload so both sides do the same work.
 */
export function stamp(payload: Payload, sample: number): void {
  const first = payload.records[0];
  if (first) first.kwh = sample / 1000;
}
