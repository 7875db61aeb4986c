// Calls a TypeScript client would write against the types openapi-typescript generates from the
// service's OpenAPI document (tests/test_client.py writes them to ./api.d.ts, then runs tsc).
// The @ts-expect-error lines make the check real: if the types were `unknown` or `any`, or lost
// a required field, tsc would report those lines as unused.
import type { components, operations, paths } from "./api";

type Schemas = components["schemas"];
type Json<T> = { content: { "application/json": T } };
type Answer<Op extends keyof operations, Status extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][Status] extends Json<infer T> ? T : never;

async function post<Path extends "/sentiment" | "/ner" | "/forecast">(
  base: string,
  key: string,
  path: Path,
  body: paths[Path]["post"]["requestBody"]["content"]["application/json"],
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key, "x-request-id": "ts-client-1" },
    body: JSON.stringify(body),
  });
}

function explain(error: Schemas["HTTPValidationError"]): string {
  return error.detail.map((d) => `${d.loc.join(".")}: ${d.msg} (${d.type})`).join("; ");
}

export async function classify(base: string, key: string, texts: string[]): Promise<string[]> {
  const r = await post(base, key, "/sentiment", { texts, return_attention: false });
  if (r.status === 422) throw new Error(explain((await r.json()) as Answer<"classify_sentiment", 422>));
  if (r.status === 503) {
    const problem = (await r.json()) as Answer<"classify_sentiment", 503>;
    throw new Error(`retry after ${r.headers.get("retry-after")} s: ${problem.detail} (${problem.request_id})`);
  }
  const answer = (await r.json()) as Answer<"classify_sentiment", 200>;
  return answer.predictions.map((p) => `${p.label} ${p.probabilities[p.label]?.toFixed(2)}`);
}

export async function entities(base: string, key: string): Promise<Schemas["Entity"][]> {
  const byText: Schemas["NerRequest"] = { texts: ["Angela Merkel met Emmanuel Macron in Paris."] };
  const byTokens: Schemas["NerTokensRequest"] = { tokens: [["EU", "rejects", "German", "call"]], return_tags: true };
  const answers = await Promise.all([post(base, key, "/ner", byText), post(base, key, "/ner", byTokens)]);
  const results: Schemas["NerResponse"][] = await Promise.all(answers.map((r) => r.json()));
  return results.flatMap((r) => r.results.flatMap((result) => result.entities));
}

export async function forecast(base: string, key: string): Promise<number[][]> {
  const body: Schemas["ForecastRequest"] = {
    series: [{ values: [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118], horizon: 3, seasonality: 12 }],
    levels: [80, 95],
  };
  const answer = (await (await post(base, key, "/forecast", body)).json()) as Answer<"forecast", 200>;
  return answer.forecasts.map((f) => [...f.point, ...f.intervals.flatMap((i) => [i.level, ...i.lower, ...i.upper])]);
}

export async function ready(base: string): Promise<boolean> {
  const r = await fetch(`${base}/readyz`);
  const body = (await r.json()) as Answer<"readyz", 200> | Answer<"readyz", 503>;
  return body.status === "ready";
}

// @ts-expect-error `texts` is required
const noTexts: Schemas["SentimentRequest"] = { return_attention: true };
// @ts-expect-error interval levels are numbers
const textLevels: Schemas["ForecastRequest"] = { series: [], levels: ["80"] };
// @ts-expect-error a NerRequest needs `texts` or `tokens`
const neither: Schemas["NerRequest"] = { return_tags: true };
// @ts-expect-error readiness is "ready" or "not ready"
const unknownStatus: Schemas["ReadinessStatus"] = { status: "starting", models: [] };
export const wrong = [noTexts, textLevels, neither, unknownStatus];
