/**
 * The part of Butane's Flatcar v1.0.0 specification that cloud-config/flatcar/
 * uses, written down from the spec (docs/config-flatcar-v1_0.md in
 * coreos/butane) as a strict schema, plus the translation Butane makes of it
 * into Ignition 3.3.0 (inline contents become data: URLs), so that the result
 * can be checked by Ignition's own `ignition-validate`. Not Butane: a checker.
 */
import { z } from 'zod';

const owner = z.object({ id: z.number().int().optional(), name: z.string().optional() }).strict();
const hash = z.string().regex(/^(?:sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})$/, 'hash is sha256-<64 hex> or sha512-<128 hex>');
const resource = z
  .object({
    source: z.string().regex(/^(?:https?|tftp|s3|gs|data):/, 'source scheme: http, https, tftp, s3, gs, data').optional(),
    inline: z.string().optional(),
    local: z.string().optional(),
    compression: z.enum(['gzip']).nullable().optional(),
    http_headers: z.array(z.object({ name: z.string(), value: z.string().optional() }).strict()).optional(),
    verification: z.object({ hash: hash.optional() }).strict().optional(),
  })
  .strict()
  .refine((r) => [r.source, r.inline, r.local].filter((x) => x !== undefined).length <= 1, 'source, inline and local are mutually exclusive');
const absolute = z.string().regex(/^\//, 'an absolute path');

export const butaneFlatcar = z
  .object({
    variant: z.literal('flatcar'),
    version: z.literal('1.0.0'),
    storage: z
      .object({
        // "Setuid/setgid/sticky bits are not supported" (files and directories in v1.0.0)
        directories: z.array(z.object({ path: absolute, overwrite: z.boolean().optional(), mode: z.number().int().min(0).max(0o777).optional(), user: owner.optional(), group: owner.optional() }).strict()).optional(),
        files: z
          .array(
            z
              .object({
                path: absolute,
                overwrite: z.boolean().optional(),
                contents: resource.optional(),
                append: z.array(resource).optional(),
                mode: z.number().int().min(0).max(0o777).optional(),
                user: owner.optional(),
                group: owner.optional(),
              })
              .strict(),
          )
          .optional(),
        links: z.array(z.object({ path: absolute, target: z.string(), hard: z.boolean().optional(), overwrite: z.boolean().optional(), user: owner.optional(), group: owner.optional() }).strict()).optional(),
      })
      .strict()
      .optional(),
    systemd: z
      .object({
        units: z.array(
          z
            .object({
              name: z.string().regex(/^[^/]+\.(?:service|socket|device|mount|automount|swap|target|path|timer|snapshot|slice|scope)$/, 'a unit name with its type suffix'),
              enabled: z.boolean().optional(),
              mask: z.boolean().optional(),
              contents: z.string().optional(),
              dropins: z.array(z.object({ name: z.string().regex(/\.conf$/, 'drop-in names end in .conf'), contents: z.string().optional() }).strict()).optional(),
            })
            .strict(),
        ),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const paths = [...(c.storage?.files ?? []), ...(c.storage?.directories ?? []), ...(c.storage?.links ?? [])].map((e) => e.path);
    for (const p of new Set(paths)) if (paths.filter((x) => x === p).length > 1) ctx.addIssue({ code: 'custom', message: `path ${p} is not unique` });
    const names = (c.systemd?.units ?? []).map((u) => u.name);
    for (const n of new Set(names)) if (names.filter((x) => x === n).length > 1) ctx.addIssue({ code: 'custom', message: `unit ${n} is not unique` });
  });

export type ButaneFlatcar = z.infer<typeof butaneFlatcar>;

const dataUrl = (text: string) => `data:,${encodeURIComponent(text)}`;
type Resource = NonNullable<NonNullable<NonNullable<ButaneFlatcar['storage']>['files']>[number]['contents']>;
const resourceToIgnition = ({ inline, local, ...r }: Resource) => {
  if (local !== undefined) throw new Error('local contents need --files-dir; not used here');
  return inline === undefined ? r : { ...r, source: dataUrl(inline) };
};

/** Butane's translation of the subset above into an Ignition 3.3.0 config. */
export function toIgnition(c: ButaneFlatcar): Record<string, unknown> {
  return {
    ignition: { version: '3.3.0' },
    storage: {
      directories: c.storage?.directories ?? [],
      files: (c.storage?.files ?? []).map((f) => ({ ...f, contents: f.contents && resourceToIgnition(f.contents), append: f.append?.map(resourceToIgnition) })),
      links: c.storage?.links ?? [],
    },
    systemd: { units: c.systemd?.units ?? [] },
  };
}
