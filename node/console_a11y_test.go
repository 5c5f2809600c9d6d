package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chromedp/chromedp"
)

// a11yLabelsJS lists the visible fields without a label (or an
// aria-label) and the buttons without a name.
const a11yLabelsJS = `JSON.stringify(
	[...document.querySelectorAll('input:not([type=hidden]):not([type=submit]), select, textarea')]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
		.concat([...document.querySelectorAll('button')].filter(e => !e.textContent.trim() && !e.getAttribute('aria-label')))
		.map(e => e.outerHTML.slice(0, 160)))`

// a11yContrastJS computes, for every element that shows text (in SVG
// charts, every text drawn, its fill as its colour), the WCAG 2 contrast
// ratio of its colour against the background it is drawn on (the
// background colours of it and its ancestors composed, alpha included)
// and lists those below AA: 4.5:1, or 3:1 for large text (24 px, or
// 18.66 px bold). Text over a background image is not judged.
const a11yContrastJS = `(() => {
	const parse = c => {
		const m = /rgba?\(([^)]+)\)/.exec(c || '');
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
	};
	const over = (t, b) => [t[0]*t[3] + b[0]*(1-t[3]), t[1]*t[3] + b[1]*(1-t[3]), t[2]*t[3] + b[2]*(1-t[3]), 1];
	const bgOf = el => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const s = getComputedStyle(e);
			if (s.backgroundImage !== 'none') return null;
			const c = parse(s.backgroundColor);
			if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
		}
		let bg = [255, 255, 255, 1];
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const lum = c => {
		const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126*f(c[0]) + 0.7152*f(c[1]) + 0.0722*f(c[2]);
	};
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	// shown: rendered (not in a closed <details>, whose content Chromium
	// skips with content-visibility).
	const shown = e => !e.checkVisibility || e.checkVisibility({visibilityProperty: true, opacityProperty: true});
	const hex = c => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
	const bad = [], seen = new Set();
	const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n; (n = w.nextNode());) {
		const el = n.parentElement;
		if (!n.textContent.trim() || !el || seen.has(el)) continue;
		seen.add(el);
		if (el.closest('script, style, noscript, template') || !shown(el)) continue;
		// In an SVG chart, only its drawn text (its title is not drawn),
		// whose colour is its fill.
		const svg = el.closest('svg') !== null;
		if (svg && !['text', 'tspan'].includes(el.tagName.toLowerCase())) continue;
		const r = el.getBoundingClientRect();
		if (r.width <= 1 || r.height <= 1) continue;
		const s = getComputedStyle(el);
		if (s.visibility !== 'visible' || parseFloat(s.opacity) === 0) continue;
		const bg = bgOf(el);
		if (!bg) continue;
		const c = parse(svg ? s.fill : s.color);
		if (!c) continue;
		const fg = over(c, bg);
		const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
		const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
		const got = ratio(fg, bg);
		if (got < need) bad.push(got.toFixed(2) + ':1 (want ' + need + ') ' + hex(fg) + ' on ' + hex(bg) + ' <' + el.tagName.toLowerCase() +
			(el.className && typeof el.className === 'string' ? ' class="' + el.className + '"' : '') + '> ' + JSON.stringify(n.textContent.trim().slice(0, 40)));
	}
	return JSON.stringify(bad);
})()`

// a11yFocusSetupJS marks every visible interactive element and records,
// as Tab moves the focus, which were focused, whether :focus-visible
// matched and their outline and shadow focused and not.
const a11yFocusSetupJS = `(() => {
	// Interactive elements, and any other made focusable (a tabindex of
	// -1 only makes an element focusable from script: a skip link's
	// target).
	const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex^="-"])';
	const els = [...document.querySelectorAll(sel)].filter(e => {
		if (e.disabled || e.closest('[inert]')) return false;
		if (e.checkVisibility && !e.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
		const r = e.getBoundingClientRect();
		return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility === 'visible';
	});
	const st = e => { const s = getComputedStyle(e); return s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor + ' | ' + s.boxShadow; };
	const a = { els, focused: new Set(), fv: {}, on: {}, off: {}, prev: null };
	els.forEach((e, i) => { e.__a11y = i; });
	const done = () => { if (a.prev !== null) a.off[a.prev] = st(els[a.prev]); a.prev = null; };
	document.addEventListener('focusin', ev => {
		done();
		const i = ev.target.__a11y;
		if (i === undefined) return;
		a.focused.add(i);
		a.fv[i] = ev.target.matches(':focus-visible');
		a.on[i] = st(ev.target);
		a.prev = i;
	}, true);
	a.done = done;
	window.__a11y = a;
	// Start the Tab order at the top of the page, whatever was clicked.
	document.body.tabIndex = -1;
	document.body.focus();
	document.body.removeAttribute('tabindex');
	return els.length;
})()`

// a11yFocusReportJS lists the interactive elements Tab never reached (a
// radio button counts as reached when one of its group was: arrows move
// within a group) and those whose focus is not visible: :focus-visible
// did not match, or the focused outline and shadow are not a ring of 2 px
// or more that differs from the unfocused style.
const a11yFocusReportJS = `(() => {
	const a = window.__a11y;
	if (document.activeElement) document.activeElement.blur();
	a.done();
	const groups = new Set([...a.focused].map(i => a.els[i]).filter(e => e.type === 'radio').map(e => e.name));
	const html = e => e.outerHTML.slice(0, 140);
	const missed = a.els.filter((e, i) => !a.focused.has(i) && !(e.type === 'radio' && groups.has(e.name))).map(html);
	const unseen = [];
	for (const i of a.focused) {
		const on = a.on[i], ring = /^(solid|dotted|dashed|double|auto) (\d+(\.\d+)?)px/.exec(on);
		const shadow = !on.endsWith('| none');
		if (!a.fv[i] || on === a.off[i] || !((ring && parseFloat(ring[2]) >= 2) || shadow)) unseen.push(on + ' (unfocused ' + a.off[i] + ', focus-visible ' + a.fv[i] + ') ' + html(a.els[i]));
	}
	window.scrollTo(0, 0);
	return JSON.stringify({missed, unseen});
})()`

// checkAccessibility checks the page shown: labels on fields and names
// on buttons, WCAG AA contrast of its text, and keyboard focus — Tab
// reaches every visible interactive element, and each shows a visible
// focus ring. It returns the problems found, one line each.
func checkAccessibility(ctx context.Context) ([]string, error) {
	var problems []string
	unnamed, err := chromedp.Run(ctx, chromedp.Evaluate[string](a11yLabelsJS))
	if err != nil {
		return nil, fmt.Errorf("cannot check labels: %w", err)
	}
	if unnamed != "[]" {
		problems = append(problems, "fields or buttons without a label: "+unnamed)
	}
	low, err := chromedp.Run(ctx, chromedp.Evaluate[string](a11yContrastJS))
	if err != nil {
		return nil, fmt.Errorf("cannot check contrast: %w", err)
	}
	var lows []string
	if err := json.Unmarshal([]byte(low), &lows); err != nil {
		return nil, err
	}
	for _, l := range lows {
		problems = append(problems, "low contrast: "+l)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](a11yFocusSetupJS))
	if err != nil {
		return nil, fmt.Errorf("cannot set up the focus check: %w", err)
	}
	for range n + 2 {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			return nil, fmt.Errorf("cannot press Tab: %w", err)
		}
	}
	rep, err := chromedp.Run(ctx, chromedp.Evaluate[string](a11yFocusReportJS))
	if err != nil {
		return nil, fmt.Errorf("cannot check focus: %w", err)
	}
	var fr struct{ Missed, Unseen []string }
	if err := json.Unmarshal([]byte(rep), &fr); err != nil {
		return nil, err
	}
	for _, m := range fr.Missed {
		problems = append(problems, "not reachable with Tab: "+m)
	}
	for _, u := range fr.Unseen {
		problems = append(problems, "focus not visible: "+u)
	}
	return problems, nil
}
