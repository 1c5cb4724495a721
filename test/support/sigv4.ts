/**
 * Checks a SigV4 signature (service execute-api) the way API Gateway does, for tests: re-sign
 * what the server received, at the instant the request says it was signed, with the same
 * credentials; the signatures must match. Used by the CLI's tests and the console proxy's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export const TEST_CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};

export interface ReceivedRequest {
  method?: string;
  /** The request target as received, e.g. `/prod/v1/leases?a=b`. */
  url?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The Authorization header the request should carry if it was signed with `credentials`. */
export async function expectedAuthorization(
  sent: ReceivedRequest,
  region: string,
  credentials = TEST_CREDENTIALS,
): Promise<string | undefined> {
  const authorization = String(sent.headers.authorization);
  const amzDate = String(sent.headers['x-amz-date']);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const url = new URL(`http://127.0.0.1${sent.url}`);
  const verifier = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 });
  const resigned = await verifier.sign(
    {
      method: sent.method ?? 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(signedHeaders.map((h) => [h, String(sent.headers[h])])),
      ...(sent.body === '' ? {} : { body: sent.body }),
    },
    {
      signingDate: new Date(
        amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
      ),
    },
  );
  return resigned.headers.authorization;
}

/** Whether the request carries a valid SigV4 signature of `credentials` for execute-api. */
export async function validSigV4(
  sent: ReceivedRequest,
  region: string,
  credentials = TEST_CREDENTIALS,
): Promise<boolean> {
  const authorization = String(sent.headers.authorization ?? '');
  if (
    !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/.test(
      authorization,
    )
  )
    return false;
  return (await expectedAuthorization(sent, region, credentials)) === authorization;
}
