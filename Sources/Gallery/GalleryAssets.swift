/// The gallery's stylesheet and script, written to `assets/` (no CDN, no network).
/// They are constants of this program, never built from user data.
enum GalleryAssets {
    static let css = """
    :root {
      --bg: #f5f6f8; --card: #ffffff; --fg: #1d2330; --muted: #667085; --line: #e3e6ec;
      --accent: #3a5ccc; --good: #1f8a4c; --good-bg: #e3f4ea; --warn: #a86400; --warn-bg: #fdf1dc;
      --bad: #c0322b; --bad-bg: #fdeceb; --neutral-bg: #eef0f4; --shadow: 0 1px 2px rgba(16,24,40,.06), 0 1px 3px rgba(16,24,40,.08);
      --s0: #3a5ccc; --s1: #e07b39; --s2: #2a9d8f; --s3: #b5449b; --s4: #8a9a2b; --s5: #6c757d;
      color-scheme: light dark;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #12151c; --card: #1b2029; --fg: #e6e9ef; --muted: #98a2b3; --line: #2c3340;
        --accent: #8aa4ff; --good: #5fd08f; --good-bg: #173325; --warn: #f0b45a; --warn-bg: #3a2c12;
        --bad: #ff7b72; --bad-bg: #3b1a1a; --neutral-bg: #262c37; --shadow: none;
        --s0: #8aa4ff; --s1: #f5a05f; --s2: #4fd1c0; --s3: #e07ad0; --s4: #c5d86a; --s5: #adb5bd;
      }
    }
    * { box-sizing: border-box; }
    [hidden] { display: none !important; }
    body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
      font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    a { color: var(--accent); text-decoration: none; }
    a:hover { text-decoration: underline; }
    h1 { font-size: 1.6rem; margin: .2rem 0 .6rem; overflow-wrap: anywhere; }
    h2 { font-size: 1.15rem; margin: 0 0 .6rem; }
    h3 { font-size: .95rem; margin: 1rem 0 .4rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
    pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
    pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
    .muted { color: var(--muted); }
    .topbar { position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 1rem;
      padding: .6rem 1.5rem; background: var(--card); border-bottom: 1px solid var(--line); }
    .topbar .brand { font-weight: 700; color: var(--fg); }
    .topbar .brand, .topbar .workflow { min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .topbar .workflow { color: var(--muted); font-size: .9rem; }
    .topbar nav a { white-space: nowrap; }
    .topbar nav { margin-left: auto; display: flex; gap: 1rem; }
    .topbar nav a.active { font-weight: 600; color: var(--fg); }
    .page { max-width: 1320px; margin: 0 auto; padding: 1.2rem 1.5rem 2rem; }
    .footer { max-width: 1320px; margin: 0 auto; padding: 1rem 1.5rem 2rem; color: var(--muted); font-size: .85rem; }
    .summary { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; color: var(--muted); }
    .about { max-width: 60rem; line-height: 1.5; margin: .2rem 0 .8rem; }
    .toolbar { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; margin: .8rem 0 1rem; }
    .toolbar input, .toolbar select, .toolbar button { font: inherit; color: var(--fg); background: var(--card);
      border: 1px solid var(--line); border-radius: 8px; padding: .4rem .6rem; }
    .toolbar input { min-width: 18rem; }
    .toolbar button { cursor: pointer; }
    .entry-list { display: grid; gap: .8rem; }
    .entry-card, .panel-row, .notebook-cell, .cell, .summary-table, .facts { background: var(--card);
      border: 1px solid var(--line); border-radius: 12px; box-shadow: var(--shadow); }
    .entry-card { display: flex; gap: 1rem; padding: .8rem 1rem; align-items: flex-start; }
    .entry-card.failed, .notebook-cell.failed { border-left: 4px solid var(--bad); }
    .card-main { flex: 0 0 17rem; min-width: 0; }
    .card-head { display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; }
    .entry-link { font-weight: 650; overflow-wrap: anywhere; }
    .card-text { color: var(--muted); font-size: .9rem; margin: .4rem 0; display: -webkit-box;
      -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
    .thumbs { display: flex; gap: .6rem; flex-wrap: wrap; }
    .thumb-cell { margin: 0; width: 104px; }
    .thumb-cell figcaption { font-size: .72rem; color: var(--muted); text-align: center; white-space: nowrap;
      overflow: hidden; text-overflow: ellipsis; }
    img { display: block; border-radius: 8px; background: var(--neutral-bg); }
    img.thumb, .missing.thumb { width: 104px; height: 104px; object-fit: cover; }
    img.panel, .missing.panel { width: 190px; height: 190px; object-fit: cover; }
    img.large, .missing.large { width: 100%; max-width: 320px; aspect-ratio: 1; object-fit: cover; }
    img.mini, .missing.mini { width: 48px; height: 48px; object-fit: cover; border-radius: 6px; font-size: .6rem; }
    .missing { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: .2rem;
      border: 2px dashed var(--line); border-radius: 8px; color: var(--muted); font-size: .75rem;
      text-align: center; padding: .3rem; overflow: hidden; overflow-wrap: anywhere; }
    .missing.failed { border-color: var(--bad); color: var(--bad); background: var(--bad-bg); }
    .badges { display: flex; gap: .35rem; flex-wrap: wrap; margin: .3rem 0; }
    .badge, .kind, .pill { display: inline-flex; gap: .35rem; align-items: baseline; border-radius: 999px;
      padding: .08rem .55rem; font-size: .78rem; font-weight: 600; background: var(--neutral-bg); white-space: nowrap; }
    .badge-name { font-weight: 500; opacity: .8; }
    .badge-name:empty { display: none; }
    .badge-value { font-variant-numeric: tabular-nums; }
    .badge.high { background: var(--good-bg); color: var(--good); }
    .badge.mid { background: var(--warn-bg); color: var(--warn); }
    .badge.low { background: var(--bad-bg); color: var(--bad); }
    .kind { color: var(--muted); font-weight: 500; }
    .kind-dialogue { color: var(--s3); }
    .pill.ran { background: var(--good-bg); color: var(--good); }
    .pill.failed { background: var(--bad-bg); color: var(--bad); }
    .title-row { display: flex; align-items: center; gap: .8rem; flex-wrap: wrap; }
    .pager { display: flex; gap: 1.2rem; margin: .2rem 0 1rem; font-size: .9rem; }
    .pager .disabled { color: var(--muted); opacity: .6; }
    .entry-header { margin-bottom: 1rem; }
    .error-box { background: var(--bad-bg); border: 1px solid var(--bad); border-radius: 12px; padding: .8rem 1rem;
      margin: 1rem 0; color: var(--fg); }
    .error-box h2, .error-box h3 { color: var(--bad); margin-top: 0; }
    .error-box ul { margin: 0; padding-left: 1.2rem; }
    .error-box li { margin: .3rem 0; }
    section { margin: 1.4rem 0; }
    .panel-row { display: grid; grid-template-columns: 15rem 1fr; gap: 1rem; padding: .9rem 1rem; margin-bottom: .8rem; }
    .panel-text { display: flex; gap: .6rem; align-items: flex-start; }
    .panel-text p { margin: 0; font-size: 1.02rem; overflow-wrap: anywhere; }
    .panel-no { flex: 0 0 auto; width: 1.8rem; height: 1.8rem; border-radius: 50%; background: var(--accent);
      color: var(--card); display: grid; place-items: center; font-weight: 700; font-size: .9rem; }
    .panel-cells { display: flex; gap: .8rem; flex-wrap: wrap; align-items: flex-start; }
    figure { margin: 0; }
    .cell { padding: .5rem; min-width: 0; }
    .panel-cells .cell { width: 208px; }
    .cell.failed { border-color: var(--bad); }
    .cell.ground-truth { border-color: var(--accent); }
    .cell-label { font-size: .75rem; font-weight: 600; color: var(--muted); margin-bottom: .35rem;
      white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .cell-text, .caption { margin: .3rem 0 0; font-size: .88rem; overflow-wrap: anywhere; }
    .caption { color: var(--muted); }
    .cell-error { color: var(--bad); background: var(--bad-bg); border-radius: 8px; padding: .4rem .5rem; font-size: .85rem; }
    .output-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: .8rem; align-items: start; }
    .ranked { list-style: none; margin: 0; padding: 0; display: grid; gap: .35rem; }
    .ranked li { display: flex; align-items: center; gap: .5rem; }
    .ranked-id { flex: 1; font-size: .82rem; overflow-wrap: anywhere; }
    .continuation { margin: .6rem 0 1rem 2.2rem; padding: .6rem .8rem; border-left: 4px solid var(--accent); background: var(--neutral-bg); border-radius: 4px; }
    .continuation h3 { margin: 0 0 .5rem; font-size: .95rem; }
    .sequence { display: flex; flex-wrap: wrap; align-items: flex-start; gap: .6rem; }
    .seq-text { flex: 1 1 12rem; margin: 0; font-size: 1.02rem; line-height: 1.5; }
    .seq-image { margin: 0; padding: .5rem; border: 1px solid var(--neutral-bg); border-radius: 6px; max-width: 18rem; }
    .decision-head { display: flex; justify-content: space-between; align-items: baseline; gap: .5rem; }
    .choice { font-weight: 700; text-transform: capitalize; }
    .probability { color: var(--muted); font-variant-numeric: tabular-nums; font-size: .88rem; }
    .meter { height: 6px; background: var(--neutral-bg); border-radius: 3px; overflow: hidden; margin-top: .3rem; }
    .meter span { display: block; height: 100%; background: var(--accent); }
    .dialogue { list-style: none; padding: 0; margin: 0; display: grid; gap: .5rem; }
    .dialogue li { display: grid; grid-template-columns: 2rem 1fr 1fr; gap: .6rem; align-items: start; }
    .round-no { color: var(--muted); font-size: .85rem; text-align: right; padding-top: .45rem; }
    .bubble { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: .45rem .7rem; overflow-wrap: anywhere; }
    .bubble.answer { background: var(--neutral-bg); }
    .bubble b { color: var(--accent); margin-right: .2rem; }
    .facts { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.2rem; padding: .8rem 1rem; margin: 0 0 1rem; }
    .facts dt { color: var(--muted); }
    .facts dd { margin: 0; display: flex; gap: .4rem; flex-wrap: wrap; overflow-wrap: anywhere; }
    table { border-collapse: collapse; }
    .summary-table { width: 100%; border-collapse: separate; border-spacing: 0; overflow: hidden; margin-bottom: 1.2rem; }
    .summary-table th, .summary-table td { padding: .45rem .8rem; text-align: left; border-bottom: 1px solid var(--line); }
    .summary-table tr:last-child td { border-bottom: 0; }
    .summary-table th { font-size: .8rem; color: var(--muted); font-weight: 600; }
    .summary-table tr.has-failures td:first-child { border-left: 3px solid var(--bad); }
    .summary-table th.num { text-align: right; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; }
    .notebook-cell { display: grid; grid-template-columns: 3.5rem 1fr; margin: 0 0 1rem; overflow: hidden; }
    .cell-prompt { padding: 1rem .5rem; color: var(--muted); font-family: ui-monospace, Menlo, monospace; font-size: .85rem;
      text-align: right; background: var(--neutral-bg); }
    .cell-body { padding: .9rem 1.1rem; min-width: 0; }
    .step-head { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; margin-bottom: .5rem; }
    .step-head h2 { margin: 0; overflow-wrap: anywhere; }
    .params th { text-align: left; font-weight: 500; color: var(--muted); padding: .15rem 1.2rem .15rem 0; vertical-align: top; }
    .params td { padding: .15rem 0; overflow-wrap: anywhere; }
    .chart-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 1rem; margin-top: .8rem; }
    .chart figcaption { font-weight: 600; font-size: .9rem; margin-bottom: .3rem; overflow-wrap: anywhere; }
    .chart-svg { width: 100%; height: auto; display: block; }
    .step-graph { margin: 0; overflow-x: auto; }
    .step-graph svg { max-width: 100%; height: auto; }
    .step-graph .edge { fill: none; stroke: var(--muted); stroke-width: 1.2; }
    .step-graph .edge-head { fill: var(--muted); }
    .step-graph .step-node rect { fill: var(--card); stroke: var(--line); stroke-width: 1.2; }
    .step-graph .step-node.failed rect { stroke: #c0392b; }
    .step-graph .step-id { font-size: 12px; font-weight: 600; fill: currentColor; }
    .step-graph .step-counts { font-size: 11px; fill: var(--muted); }
    .chart-svg .grid { stroke: var(--line); stroke-width: 1; }
    .chart-svg .axis { stroke: var(--muted); stroke-width: 1; }
    .chart-svg .tick, .chart-svg .axis-label { fill: var(--muted); font-size: 10px; font-family: system-ui, sans-serif; }
    .chart-svg .bar { opacity: .85; }
    .chart-svg .bar:hover { opacity: 1; }
    .chart-svg polyline { fill: none; stroke-width: 2.2; stroke-linejoin: round; }
    .s0 { fill: var(--s0); stroke: var(--s0); } .s1 { fill: var(--s1); stroke: var(--s1); }
    .s2 { fill: var(--s2); stroke: var(--s2); } .s3 { fill: var(--s3); stroke: var(--s3); }
    .s4 { fill: var(--s4); stroke: var(--s4); } .s5 { fill: var(--s5); stroke: var(--s5); }
    polyline.s0, polyline.s1, polyline.s2, polyline.s3, polyline.s4, polyline.s5 { fill: none; }
    .legend { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .82rem; color: var(--muted); }
    .legend .key::before { content: ""; display: inline-block; width: .8rem; height: .8rem; border-radius: 3px;
      margin-right: .35rem; vertical-align: -1px; background: currentColor; }
    .legend .key.s0 { color: var(--s0); } .legend .key.s1 { color: var(--s1); } .legend .key.s2 { color: var(--s2); }
    .legend .key.s3 { color: var(--s3); } .legend .key.s4 { color: var(--s4); } .legend .key.s5 { color: var(--s5); }
    @media (max-width: 760px) {
      .entry-card { flex-direction: column; }
      .card-main { flex-basis: auto; }
      .panel-row { grid-template-columns: 1fr; }
      .dialogue li { grid-template-columns: 1.5rem 1fr; }
      .dialogue .answer { grid-column: 2; }
    }
    """

    /// Filter and sort for index.html; does nothing on other pages.
    static let javascript = """
    (function () {
      "use strict";
      var list = document.getElementById("entries");
      if (!list) { return; }
      var cards = Array.prototype.slice.call(list.querySelectorAll(".entry-card"));
      var filter = document.getElementById("filter");
      var sort = document.getElementById("sort");
      var direction = document.getElementById("direction");
      var count = document.getElementById("count");
      var noMatch = document.getElementById("no-match");
      var scores = cards.map(function (card) {
        try { return JSON.parse(card.getAttribute("data-scores") || "{}"); } catch (e) { return {}; }
      });
      cards.forEach(function (card, i) { card._scores = scores[i]; });

      function apply() {
        var terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
        var shown = 0;
        cards.forEach(function (card) {
          var text = card.getAttribute("data-search") || "";
          var match = terms.every(function (t) { return text.indexOf(t) >= 0; });
          card.hidden = !match;
          if (match) { shown += 1; }
        });
        var key = sort.value;
        var descending = direction.getAttribute("data-descending") === "true";
        var sign = descending ? -1 : 1;
        var sorted = cards.slice().sort(function (a, b) {
          var pa = Number(a.getAttribute("data-position")), pb = Number(b.getAttribute("data-position"));
          if (key === "") { return pa - pb; }
          if (key === "id") { return sign * a.getAttribute("data-id").localeCompare(b.getAttribute("data-id")); }
          var name = key.slice("score:".length);
          var va = a._scores[name], vb = b._scores[name];
          var ma = typeof va !== "number", mb = typeof vb !== "number";
          if (ma || mb) { return (ma - mb) || (pa - pb); }  // entries without the score go last
          return sign * (va - vb) || (pa - pb);
        });
        sorted.forEach(function (card) { list.appendChild(card); });
        count.textContent = shown + " of " + cards.length + " shown";
        noMatch.hidden = shown !== 0;
      }

      direction.addEventListener("click", function () {
        var descending = direction.getAttribute("data-descending") !== "true";
        direction.setAttribute("data-descending", String(descending));
        direction.textContent = descending ? "↓ high first" : "↑ low first";
        apply();
      });
      filter.addEventListener("input", apply);
      sort.addEventListener("change", apply);
      apply();
    })();
    """
}
