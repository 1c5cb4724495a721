/** The local-host blueprint's config: where resource directories live, and how commands run. */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { ConfiguredBlueprint } from '../../core/blueprint.ts';

export const localHostConfigSchema = z
  .object({
    /**
     * Absolute directory holding one sub-directory per resource.
     * @default `<dataDir>/local-host/<blueprintId>`
     */
    root: z
      .string()
      .refine(isAbsolute, {
        error: (issue) => `root must be an absolute path (got '${issue.input}')`,
      })
      .optional(),
    /** Shell that runs `script` commands as `<shell> -c <script>`. @default '/bin/sh' */
    shell: z.string().min(1).default('/bin/sh'),
    /**
     * Per stream (stdout, stderr) and command: what is kept on disk; the rest is dropped and
     * `truncated` reported. @default 1 MiB
     */
    maxOutputBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
  })
  .strict();

export type LocalHostConfig = z.output<typeof localHostConfigSchema>;
export type LocalHost = ConfiguredBlueprint<LocalHostConfig>;
