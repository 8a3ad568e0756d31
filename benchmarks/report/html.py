"""The browsable leaderboard: a :class:`~inpaintbench.report.document.Document` as one static,
self-contained HTML page.

No server, no network: the page opens from the file system with its folder. Example images
(and figures from outside that folder) are embedded as base64 PNG, figures beside the page
linked relatively; the data of the per-sample view is one JSON block; a few lines of
plain JavaScript sort tables (click a header) and drive the per-sample view (pick a table and
an image: original, mask, input and every method's output with that sample's metrics, and a
flip between two methods).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from inpaintbench.metrics.table import METRICS
from inpaintbench.report.document import Block, BulletList, Details, Document, Figure, Heading, Section, Table, Text
from inpaintbench.store.artifacts import example_path, load_examples

if TYPE_CHECKING:  # frames are only read here, never built
    import pandas as pd

#: Per-sample metrics shown under each output.
SAMPLE_METRICS = ("psnr", "ssim", "lpips", "hole_psnr")


#: Above this many pixels a viewer image is embedded as JPEG (quality :data:`JPEG_QUALITY`): 256-px
#: photographs as lossless PNG made the default page 22 MB; digits and faces stay lossless.
LOSSY_ABOVE_PIXELS = 128 * 128
JPEG_QUALITY = 90


def png_data_uri(image: np.ndarray) -> str:
    """A data URI of a uint8 ``[C, H, W]`` (C = 1 or 3) or bool ``[1, H, W]`` array: PNG (lossless),
    except JPEG for grey or colour images over :data:`LOSSY_ABOVE_PIXELS` pixels (masks stay PNG)."""
    array = np.asarray(image)
    binary = array.dtype == bool
    if binary:
        array = array.astype(np.uint8) * 255
    array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    buffer = io.BytesIO()
    picture = Image.fromarray(np.ascontiguousarray(array))
    if not binary and array.shape[0] * array.shape[1] > LOSSY_ABOVE_PIXELS:
        picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_data_uri(path: Path) -> str:
    """A PNG file as a data URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def viewer_data(results_dir: Path, group: pd.DataFrame, dataset: str, mask: str, methods: list[str]) -> dict | None:
    """The per-sample view of one table from the examples the runner saved (None if none).

    Returns ``{"methods": [...], "metrics": [[key, title, digits]...], "samples": {id: {"original",
    "mask", "input", "outputs": {method: uri}, "values": {method: {key: value}}}}}``.
    """
    inputs = load_examples(example_path(results_dir, dataset, mask, "_input"))
    if not inputs:
        return None
    outputs = {m: load_examples(example_path(results_dir, dataset, mask, m)) for m in methods}
    ok = group[group["status"] == "ok"]
    keys = [k for k in SAMPLE_METRICS if k in ok]
    # Each (image, method)'s last ok record, looked up once (not one frame filter per image).
    last = ok.assign(sample_id=ok["sample_id"].astype(str)).drop_duplicates(["sample_id", "method"], keep="last")
    found = {(sid, method): [_json_number(v) for v in vals]
             for sid, method, *vals in last[["sample_id", "method", *keys]].itertuples(index=False)}
    samples = {}
    for sid, parts in inputs.items():
        original, hole = parts["original"], parts["mask"]
        masked = np.where(hole, 0, original).astype(np.uint8)
        values = {m: dict(zip(keys, found[(sid, m)])) for m in methods if (sid, m) in found}
        samples[sid] = {
            "original": png_data_uri(original), "mask": png_data_uri(~hole), "input": png_data_uri(masked),
            "outputs": {m: png_data_uri(o[sid]["output"]) for m, o in outputs.items() if sid in o},
            "values": values,
        }
    metrics = [[m.name, m.title, m.digits] for m in METRICS if m.name in SAMPLE_METRICS and m.name in group]
    return {"methods": methods, "metrics": metrics, "samples": samples}


def _json_number(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _inline(text: str) -> str:
    """Escaped text with the markdown the leaderboard uses: `code`, **bold**, *italics*, _whole line
    italics_, [links](url)."""
    italic = len(text) > 2 and text.startswith("_") and text.endswith("_")
    out = html.escape(text[1:-1] if italic else text)
    codes: list[str] = []

    def keep(match: re.Match) -> str:
        codes.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = re.sub(r"`([^`]+)`", keep, out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<i>\1</i>", out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)
    return f"<i>{out}</i>" if italic else out


def _sort_key(text: str) -> str:
    match = re.match(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf)", text)
    if not match:
        return ""
    value = match.group(1)
    return "Infinity" if value in ("inf", "+inf") else ("-Infinity" if value == "-inf" else value)


def table_html(frame: pd.DataFrame, css: str = "sortable") -> str:
    """A table whose headers sort it (numbers by value: each cell's ``data-sort`` is its leading number)."""
    head = "".join(f'<th title="click to sort">{html.escape(str(c))}</th>' for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = str(value)
            cells.append(f'<td data-sort="{_sort_key(text)}">{_inline(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="{css}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1500px;color:#222}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;margin:.6em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
table.sortable th{cursor:pointer;background:#f1f1f1}
table.sortable th.asc::after{content:" \\25B2"} table.sortable th.desc::after{content:" \\25BC"}
img.fig{max-width:100%;border:1px solid #eee;margin:.3em 0}
.viewer{border:1px solid #bbb;padding:.6em;background:#fafafa}
.cells{display:flex;flex-wrap:wrap;gap:8px}
.cell{font-size:11px;text-align:center;width:128px}
.cell img,#flip-img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #999;background:#000}
#flip-img{width:224px;height:224px}
nav a{margin-right:1em} code{background:#f3f3f3;padding:0 2px}
details{margin:.6em 0} summary{cursor:pointer;color:#444}
"""

_JS = r"""
function sortTable(th){
  const table=th.closest('table'), body=table.tBodies[0], idx=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('asc');
  [...th.parentNode.children].forEach(h=>h.classList.remove('asc','desc'));
  th.classList.add(asc?'asc':'desc');
  const key=tr=>{const c=tr.children[idx];const s=c.dataset.sort;return s===''?null:parseFloat(s);};
  const rows=[...body.rows];
  rows.sort((a,b)=>{const x=key(a),y=key(b);
    if(x!==null&&y!==null&&!isNaN(x)&&!isNaN(y)) return asc?x-y:y-x;
    if(x!==null&&!isNaN(x)) return -1; if(y!==null&&!isNaN(y)) return 1;
    const s=a.children[idx].textContent.localeCompare(b.children[idx].textContent); return asc?s:-s;});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));

const DATA=JSON.parse(document.getElementById('viewer-data').textContent);
const $=id=>document.getElementById(id);
function fmt(v,d){if(v===null||v===undefined)return '–';if(typeof v==='string')return v;return v.toFixed(d);}
function fillSelect(sel,items){sel.innerHTML='';items.forEach(([v,t])=>{const o=document.createElement('option');o.value=v;o.textContent=t;sel.appendChild(o);});}
function cell(title,src,lines){const d=document.createElement('div');d.className='cell';
  const i=document.createElement('img');i.src=src;i.alt=title;d.appendChild(i);
  const c=document.createElement('div');c.innerHTML='<b></b>';c.firstChild.textContent=title;d.appendChild(c);
  (lines||[]).forEach(l=>{const x=document.createElement('div');x.textContent=l;d.appendChild(x);});return d;}
let flipShown='a';
function current(){const t=DATA.tables[$('pick-table').value];return [t,t?t.samples[$('pick-sample').value]:null];}
function showFlip(){const [t,s]=current();if(!s)return;const m=flipShown==='a'?$('flip-a').value:$('flip-b').value;
  if(s.outputs[m]){$('flip-img').src=s.outputs[m];} $('flip-label').textContent='showing: '+m;}
function showSample(){const [t,s]=current();const box=$('cells');box.innerHTML='';if(!s)return;
  box.appendChild(cell('original',s.original));box.appendChild(cell('mask (black = hole)',s.mask));box.appendChild(cell('input',s.input));
  t.methods.forEach(m=>{if(!s.outputs[m])return;const v=s.values[m]||{};
    box.appendChild(cell(m,s.outputs[m],t.metrics.map(([k,title,d])=>title+' '+fmt(v[k],d))));});
  showFlip();}
function showTable(){const t=DATA.tables[$('pick-table').value];if(!t)return;
  fillSelect($('pick-sample'),Object.keys(t.samples).map(s=>[s,s]));
  const ms=t.methods.filter(m=>Object.values(t.samples).some(s=>s.outputs[m])).map(m=>[m,m]);
  fillSelect($('flip-a'),ms);fillSelect($('flip-b'),ms);if(ms.length>1)$('flip-b').selectedIndex=1;
  flipShown='a';showSample();}
if($('pick-table')){
  fillSelect($('pick-table'),DATA.tables.map((t,i)=>[String(i),t.title]));
  $('pick-table').addEventListener('change',showTable);$('pick-sample').addEventListener('change',showSample);
  $('flip-a').addEventListener('change',()=>{flipShown='a';showFlip();});
  $('flip-b').addEventListener('change',()=>{flipShown='b';showFlip();});
  $('flip').addEventListener('click',()=>{flipShown=flipShown==='a'?'b':'a';showFlip();});
  showTable();
}
"""


def render_html(document: Document, base: Path) -> str:
    """The page of ``document``, written to the folder ``base``.

    Figures inside ``base`` are linked relatively (``figures/...png``; the page stays small),
    anything else and every example image is embedded as a base64 PNG: the page opens from the
    file system with its folder, and needs nothing else. Text is escaped (:func:`_inline`), the
    viewer's JSON has its ``</`` escaped so no string in it can close the script element.
    """
    title = html.escape(document.title)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>",
             f"<style>{_CSS}</style></head><body><h1>{title}</h1>"]
    parts += [block_html(block, base) for block in document.answer]
    if document.origin:
        parts.append(f"<p>{_inline(document.origin)}</p>")
    parts += [block_html(block, base) for block in document.intro]
    parts.append("<nav>" + "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in document.sections)
                 + '<a href="#viewer">per-sample view</a></nav>')
    for section in document.sections:
        parts += section_html(section, base)
    tables = [{"title": s.title, **s.viewer} for s in document.sections if s.viewer]
    parts.append(_viewer_html(bool(tables)))
    parts += [block_html(block, base) for block in document.outro]
    # Every "<" as its JSON escape: no string can close the element ("</script>") or open an HTML
    # comment ("<!--") that would swallow the page's scripts.
    data = json.dumps({"tables": tables}, separators=(",", ":")).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="viewer-data">{data}</script>')
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


def section_html(section: Section, base: Path | None = None) -> list[str]:
    """The parts of one section: ``<section id=anchor><h2>title</h2>``, its blocks, ``</section>``."""
    return ([f'<section id="{html.escape(section.anchor)}"><h2>{html.escape(section.title)}</h2>']
            + [block_html(block, base) for block in section.blocks] + ["</section>"])


def block_html(block: Block, base: Path | None = None) -> str:
    """One block as HTML; a figure inside ``base`` is linked relatively, any other embedded."""
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return "<p>" + "<br>".join(_inline(line) for line in block.text.split("\n")) + "</p>"
    if isinstance(block, Table):
        return "\n".join(_titled(block.title, block.caption) + [table_html(block.frame)])
    if isinstance(block, Figure):
        src = _relative_src(Path(block.path), base) or file_data_uri(block.path)
        image = f'<img class="fig" src="{html.escape(src)}" alt="{html.escape(block.alt)}">'
        return "\n".join(_titled(block.title, None) + [image])
    if isinstance(block, BulletList):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Details):
        return "\n".join([f"<details><summary>{html.escape(block.summary)}</summary>"]
                         + [block_html(b, base) for b in block.blocks] + ["</details>"])
    raise TypeError(f"not a document block: {block!r}")


def _titled(title: str | None, caption: str | None) -> list[str]:
    """A table's or figure's sub-heading and caption paragraph (each only when given)."""
    return ([f"<h3>{html.escape(title)}</h3>"] if title else []) + ([f"<p>{_inline(caption)}</p>"] if caption else [])


def _relative_src(path: Path, base: Path | None) -> str | None:
    """``path`` relative to ``base`` (forward slashes) if it lies inside it, else None."""
    if base is None:
        return None
    try:
        return path.resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return None


def _viewer_html(has_tables: bool) -> str:
    """The per-sample view's section: its controls (driven by ``_JS``), or a note that no example
    images were saved."""
    if not has_tables:
        return '<section id="viewer"><h2>Per-sample view</h2>\n<p>No example images were saved with these results.</p>\n</section>'
    return ('<section id="viewer"><h2>Per-sample view</h2>\n'
            '<div class="viewer"><label>table <select id="pick-table"></select></label> '
            '<label>image <select id="pick-sample"></select></label>'
            '<div class="cells" id="cells"></div><h3>Flip between two methods</h3>'
            '<label>A <select id="flip-a"></select></label> <label>B <select id="flip-b"></select></label> '
            '<button id="flip" type="button">flip A / B</button> <span id="flip-label"></span><br>'
            '<img id="flip-img" alt="flip view"></div>\n</section>')
