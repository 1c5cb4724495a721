/**
 * What every page of the console is given: the API, who the caller is, where to draw, and a
 * signal that ends the page's polling when the user goes elsewhere.
 */
import type { Api } from './api.ts';
import { h } from './dom.ts';

export interface Me {
  principal: string;
  admin: boolean;
}

export interface PageContext {
  api: Api;
  me: Me;
  main: HTMLElement;
  /** Aborted when the user leaves the page. */
  signal: AbortSignal;
  /** The id in the route (`#/leases/<id>`), if any. */
  id: string | undefined;
  /** The route's query (`#/leases?status=pending`). */
  query: URLSearchParams;
}

export type Page = (context: PageContext) => void | Promise<void>;

/** How often pages re-read what they show: well inside the 3 s a person notices. */
export const REFRESH_MS = 1_500;

/** Waits `ms`, or less if the page is left. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        done();
      },
      { once: true },
    );
  });
}

/**
 * Runs `refresh` now and every `ms` until the page is left; a failure is shown in `errors` (an
 * alert in the page, never a blank screen) and cleared by the next success.
 */
export async function keepFresh(
  signal: AbortSignal,
  errors: HTMLElement,
  refresh: () => Promise<void>,
  ms = REFRESH_MS,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await refresh();
      if (!errors.hidden) {
        errors.hidden = true;
        errors.textContent = '';
      }
    } catch (err) {
      if (signal.aborted) return;
      showError(errors, err);
    }
    await pause(ms, signal);
  }
}

export function showError(where: HTMLElement, err: unknown): void {
  const text = err instanceof Error ? err.message : String(err);
  if (where.textContent !== text) where.textContent = text;
  where.hidden = false;
}

/** The alert a page shows its errors in. */
export function errorBox(): HTMLElement {
  const box = h('p', { class: 'error', role: 'alert' });
  box.hidden = true;
  return box;
}

/**
 * Redraws `into` only when `key` changed, and puts keyboard focus back on the same link or
 * button (same href, or same text) if it was inside: polling must not steal the user's place.
 */
export function redrawIfChanged(into: HTMLElement, key: string, draw: () => Node[]): void {
  if (into.dataset.key === key) return;
  into.dataset.key = key;
  const focused = document.activeElement;
  const had = focused instanceof HTMLElement && into.contains(focused) ? focused : undefined;
  const mark = had && (had.getAttribute('href') ?? had.textContent);
  into.replaceChildren(...draw());
  if (!had || mark === null) return;
  for (const candidate of into.querySelectorAll<HTMLElement>(had.tagName)) {
    if ((candidate.getAttribute('href') ?? candidate.textContent) === mark) {
      candidate.focus();
      return;
    }
  }
}

/** A link to a console route. */
export function link(route: string, text: string): HTMLAnchorElement {
  return h('a', { href: `#${route}` }, text);
}

export function heading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: '-1' }, text);
}

/** `12:03:04` for a time today, else the date too. */
export function when(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}
