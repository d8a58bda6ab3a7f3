// Accessibility checks of the console, run in the page by console.test.mjs: every control has
// an accessible name, and the keyboard alone walks a form in its visual order.

// The accessible name of a control as the test counts it: aria-label, the text of the elements
// aria-labelledby names, the text of its <label>s, or (buttons, summaries) its own text. A
// placeholder or a title does not count. Serialized into the page, so it stands alone.
function accessibleName(el) {
  const text = (e) => (e ? e.textContent.replace(/\s+/g, ' ').trim() : '');
  let name = (el.getAttribute('aria-label') || '').trim();
  if (!name && el.hasAttribute('aria-labelledby')) {
    name = el.getAttribute('aria-labelledby').split(/\s+/).map((id) => text(document.getElementById(id))).join(' ').trim();
  }
  if (!name && el.labels) name = Array.from(el.labels).map(text).join(' ').trim();
  if (!name && (el.tagName === 'BUTTON' || el.tagName === 'SUMMARY')) name = text(el);
  return name;
}

const inPage = (body) => `(() => { const accessibleName = ${accessibleName.toString()}; ${body} })()`;

// {controls: how many were looked at, unnamed: [outerHTML of each control without a name]}
// for every input, select, textarea and button in the document (hidden ones in closed panels
// too: they are named before they are shown).
export async function controlNames(page) {
  return page.evaluate(inPage(`
    const unnamed = [];
    const all = document.querySelectorAll('input, select, textarea, button');
    let controls = 0;
    for (const el of all) {
      if (el.type === 'hidden') continue;
      controls++;
      if (!accessibleName(el)) unnamed.push(el.outerHTML.slice(0, 200));
    }
    return { controls, unnamed };`));
}

// The focused element: {tag, name} (tag lower-case; name as accessibleName counts it).
export async function focused(page) {
  return page.evaluate(inPage(`
    const el = document.activeElement;
    return el ? { tag: el.tagName.toLowerCase(), name: accessibleName(el) } : { tag: '', name: '' };`));
}

// Presses Tab until the control named `name` has the focus (at most `max` presses) and returns
// the names focused on the way, that one last; throws when it is not reached.
export async function tabTo(page, name, max = 20) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    seen.push(f.name);
    if (f.name === name) return seen;
  }
  throw new Error(`${max} Tab presses did not reach "${name}": focused ${JSON.stringify(seen)}`);
}
