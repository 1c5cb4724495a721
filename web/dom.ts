/**
 * A few DOM helpers instead of a view library: the console's pages are tables, lists and
 * buttons re-drawn from API answers, which `h()` and `replaceChildren` cover.
 */

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | undefined | Handler>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
    return;
  }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

/** `h('a', { href: '#/' }, 'Overview')`; `onclick: fn` listens; `false`/undefined omits. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A table with a caption and header cells (`scope=col`), for screen readers. */
export function table(
  caption: string,
  headers: string[],
  rows: HTMLTableRowElement[],
  props: Props = {},
): HTMLTableElement {
  return h(
    'table',
    props,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, ...rows),
  );
}

/** A definition list of label → value, skipping empty values. */
export function details(items: Array<[string, Child]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'details' },
    ...items
      .filter(([, value]) => value !== undefined && value !== '' && value !== null)
      .map(([label, value]) => [h('dt', {}, label), h('dd', { 'data-field': label }, value)]),
  );
}

export function code(text: string): HTMLElement {
  return h('code', {}, text);
}
