import { afterEach, describe, expect, it } from "vitest";
import { InvalidConfigError } from "../../src/core/errors.js";
import {
  AZURE_CONNECTION_ENV,
  azureConfigFromUrl,
  parseAzureConfig,
  parseS3Config,
  s3ConfigFromUrl,
} from "../../src/stores/cloud/config.js";
import { resolveS3Options } from "../../src/stores/s3/config.js";

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error).toMatchObject({ code: "CAIRN_INVALID_CONFIG" });
    return [...(error as InvalidConfigError).problems];
  }
  throw new Error("expected an InvalidConfigError");
}

describe("s3 configuration", () => {
  it("reads the URL form: bucket, prefix and the query parameters, typed", () => {
    const config = s3ConfigFromUrl(
      "s3://my-bucket/etl/prod/?endpoint=http://127.0.0.1:7480&region=eu-west-1&forcePathStyle=true&requestTimeoutMs=2500",
    );
    expect(config).toEqual({
      bucket: "my-bucket",
      prefix: "/etl/prod/",
      endpoint: "http://127.0.0.1:7480",
      region: "eu-west-1",
      forcePathStyle: true,
      requestTimeoutMs: 2500,
    });
    expect(parseS3Config(config)).toEqual({ singleWriter: false });
    expect(resolveS3Options(config as never)).toMatchObject({ bucket: "my-bucket", keyPrefix: "etl/prod/" });
    expect(resolveS3Options({ bucket: "b1" })).toMatchObject({ keyPrefix: "", requestTimeoutMs: 10_000 });
  });

  it("keeps credentials out of URLs and names every problem at once", () => {
    expect(problems(() => s3ConfigFromUrl("s3://key:secret@bucket/p"))).toEqual([
      expect.stringMatching(/no user, password or port/),
    ]);
    expect(problems(() => s3ConfigFromUrl("s3://b1/p?endpoint=x&colour=red&singleWriter=yes"))).toEqual([
      expect.stringMatching(/unknown query parameter "colour"/),
      expect.stringMatching(/singleWriter must be true or false/),
    ]);
    const found = problems(() =>
      parseS3Config({
        bucket: "",
        prefix: "a//b",
        endpoint: "ftp://x",
        maxAttempts: 0,
        colour: 1,
        singleWriter: "no",
      }),
    );
    expect(found).toHaveLength(6);
    expect(found.join("\n")).toMatch(/singleWriter must be a boolean/);
    expect(found.join("\n")).toMatch(/no option "colour"/);
    expect(found.join("\n")).toMatch(/bucket must be/);
    expect(found.join("\n")).toMatch(/empty, "\." or "\.\." segment/);
    expect(found.join("\n")).toMatch(/endpoint must be an http/);
    expect(found.join("\n")).toMatch(/maxAttempts must be/);
  });

  it("takes a ready client, but then no connection settings beside it", () => {
    const client = { send: async () => ({}) };
    expect(resolveS3Options({ bucket: "b1", client }).client).toBe(client);
    expect(problems(() => parseS3Config({ bucket: "b1", client, region: "x" }))).toEqual([
      expect.stringMatching(/client is given, so region must not be/),
    ]);
    expect(problems(() => parseS3Config({ bucket: "b1", credentials: { accessKeyId: "a" } }))).toEqual([
      expect.stringMatching(/credentials must be/),
    ]);
  });
});

it("reports every invalid S3 option at once, before loading the SDK", async () => {
  const { createS3Objects } = await import("../../src/stores/s3/objects.js");
  const error = await createS3Objects({
    bucket: "",
    endpoint: "not a url",
    requestTimeoutMs: 0,
    maxAttempts: 0,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidConfigError);
  expect((error as InvalidConfigError).problems).toHaveLength(4);
});

describe("azure configuration", () => {
  const saved = process.env[AZURE_CONNECTION_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[AZURE_CONNECTION_ENV];
    else process.env[AZURE_CONNECTION_ENV] = saved;
  });

  it("reads azblob://container/prefix with the connection string from the environment", () => {
    process.env[AZURE_CONNECTION_ENV] = "UseDevelopmentStorage=true";
    const config = azureConfigFromUrl("azblob://runs/team-a?singleWriter=true");
    expect(config).toEqual({
      container: "runs",
      prefix: "/team-a",
      connectionString: "UseDevelopmentStorage=true",
      singleWriter: true,
    });
    expect(parseAzureConfig(config)).toEqual({ singleWriter: true });
  });

  it("says where the connection string must come from when it is missing", () => {
    delete process.env[AZURE_CONNECTION_ENV];
    expect(problems(() => azureConfigFromUrl("azblob://runs"))).toEqual([
      expect.stringMatching(/AZURE_STORAGE_CONNECTION_STRING, which is not set/),
    ]);
  });

  it("needs exactly one way to reach the account and a valid container name", () => {
    expect(problems(() => parseAzureConfig({ container: "runs" }))).toEqual([
      expect.stringMatching(
        /one of connectionString, accountUrl \(\+ credential\) or containerClient is required/,
      ),
    ]);
    const found = problems(() =>
      parseAzureConfig({
        container: "Bad--Name",
        connectionString: "x",
        accountUrl: "https://a",
        singleWriter: 1,
      }),
    );
    expect(found.join("\n")).toMatch(/singleWriter must be a boolean/);
    expect(found.join("\n")).toMatch(/give only one of connectionString, accountUrl, containerClient/);
    expect(found.join("\n")).toMatch(/not a valid Azure container name/);
    const credential = { getToken: async () => null };
    expect(
      parseAzureConfig({ container: "runs", accountUrl: "https://acct.blob.core.windows.net", credential }),
    ).toEqual({ singleWriter: false });
  });
});
