/**
 * The Drydock web console: a single page app over the lease API. Routes are in the URL hash
 * (`#/leases?status=pending`), so a link or a reload shows the same view.
 */
import { Api } from './api.ts';
import { type Me, type Page, type PageContext, showError } from './context.ts';
import { h } from './dom.ts';
import { blueprintPage } from './views/blueprint.ts';
import { blueprintsPage } from './views/blueprints.ts';
import { leasePage } from './views/lease.ts';
import { leasesPage } from './views/leases.ts';
import { overviewPage } from './views/overview.ts';
import { resourcePage } from './views/resource.ts';
import { resourcesPage } from './views/resources.ts';

interface Config {
  token: string;
  target: string;
}

const ROUTES: Record<string, { list: Page; one?: Page }> = {
  '': { list: overviewPage },
  leases: { list: leasesPage, one: leasePage },
  resources: { list: resourcesPage, one: resourcePage },
  blueprints: { list: blueprintsPage, one: blueprintPage },
};

function readConfig(): Config {
  const text = document.getElementById('drydock-config')?.textContent;
  if (!text) throw new Error('this page came without its configuration; reload it');
  return JSON.parse(text) as Config;
}

function navigation(me: Me): HTMLElement[] {
  const items: Array<[string, string]> = [
    ['#/', 'Overview'],
    ['#/leases', 'Leases'],
    ...(me.admin ? ([['#/resources', 'Resources']] as Array<[string, string]>) : []),
    ['#/blueprints', 'Blueprints'],
  ];
  return [
    ...items.map(([href, text]) => h('li', {}, h('a', { href }, text))),
    h('li', { class: 'me' }, `${me.principal}${me.admin ? ' (admin)' : ''}`),
  ];
}

/** Marks the current section's link for screen readers and the eye. */
function markCurrent(nav: HTMLElement, section: string): void {
  for (const a of nav.querySelectorAll('a')) {
    const current = a.getAttribute('href') === `#/${section}`;
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function start(): Promise<void> {
  const main = document.getElementById('main') as HTMLElement;
  const problem = document.getElementById('problem') as HTMLElement;
  const nav = document.getElementById('nav') as HTMLElement;
  let api: Api;
  let me: Me;
  try {
    api = new Api(readConfig().token);
    me = await api.get<Me>('/v1/me');
  } catch (err) {
    main.replaceChildren(
      h('h1', {}, 'The console cannot start'),
      h('p', {}, 'Reload the page once the server is running (npm start, or drydock console).'),
    );
    showError(problem, err);
    return;
  }
  nav.replaceChildren(...navigation(me));

  let leaving: AbortController | undefined;
  const show = async () => {
    leaving?.abort();
    const here = new AbortController();
    leaving = here;
    problem.hidden = true;
    const [path = '', search = ''] = window.location.hash.replace(/^#\/?/, '').split('?');
    const [section = '', id] = path.split('/').map(decodeURIComponent);
    markCurrent(nav, section);
    const route = ROUTES[section];
    const page = route ? (id ? route.one : route.list) : undefined;
    main.replaceChildren();
    if (!page) {
      main.append(
        h('h1', { tabindex: '-1' }, 'No such page'),
        h('p', {}, h('a', { href: '#/' }, 'Go to the overview')),
      );
      return;
    }
    const context: PageContext = {
      api,
      me,
      main,
      signal: here.signal,
      id,
      query: new URLSearchParams(search),
    };
    try {
      await page(context);
    } catch (err) {
      if (!here.signal.aborted) showError(problem, err);
    }
  };
  window.addEventListener('hashchange', () => {
    void show().then(() => {
      // Keyboard and screen reader users land on the new page's heading.
      (main.querySelector('h1') as HTMLElement | null)?.focus();
    });
  });
  await show();
}

void start();
