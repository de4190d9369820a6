/** Building DOM without HTML strings: every piece of text becomes a text node. */

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | number | boolean | null | undefined>;

/** `h("a", { href: url }, "text", child…)`: attributes set with `setAttribute`, a `true`
 * boolean as an empty attribute, `false`/null/undefined left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(
    ...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false),
  );
  return el;
}

/** The element with `id`, of the expected type (the page's markup is ours: fail loudly). */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is missing from the page`);
  return el;
}

/**
 * An http(s) URL resolved against the page, or null for anything else (`javascript:`…).
 * With `absolute`, a relative value is null too (a source's `uri` may be a bare file name).
 */
export function safeUrl(value: string | null | undefined, absolute = false): string | null {
  if (!value || (absolute && !/^https?:\/\//i.test(value))) return null;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** A token safe inside an `id` attribute. */
export function domId(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, "_");
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
