"""StoryWorld text from scene graphs, and a caption reader, in Python for the GILL story stage.

- `description(scene, ...)`: a full description of a panel in the grammar of a story's first caption
  (Sources/StoryWorld/CaptionGrammar.swift, `introduceStory`): same locatives, nouns, verbs and
  templates, every object with size, colour, kind and position (the grammar drops a size 25% of the
  time; a description written from the scene graph has nothing to hide). `variants(scene)` lists every
  sentence the grammar can write for a scene; `check_grammar` verifies real first captions are among them.
- `check_caption(caption, scene)`: a port of Sources/StoryWorld/CaptionChecker.swift (per-attribute
  claims and correctness, dialogue-style text, hallucinated and repeated kinds), for validation during training only;
  reported figures come from Storyloom's own `caption-check` step.
"""
import itertools
import re

LOCATIVES = {"day": ["on a sunny meadow", "in a green field on a sunny day"], "night": ["at night", "in a field at night"],
             "beach": ["on a beach", "by the sea"], "snow": ["in the snow", "on a snowy field"],
             "indoor": ["in a room", "inside a house"], "forest": ["in a forest", "in the woods"],
             "city": ["in a city street", "in the city"], "desert": ["in a desert", "among sand dunes"]}
NOUNS = {"day": ["a sunny meadow", "a green field on a sunny day"], "night": ["a dark night", "a field at night"],
         "beach": ["a beach", "a sandy beach by the sea"], "snow": ["a snowy field", "a winter field covered in snow"],
         "indoor": ["a room", "a living room"], "forest": ["a forest", "a clearing in the woods"],
         "city": ["a city street", "a street in the city"], "desert": ["a desert", "a sandy desert"]}
PHRASE = {"left": "on the left", "middle": "in the middle", "right": "on the right"}
SKY = {"star", "balloon"}


def indefinite(o, size=True, position=True):
    words = " ".join(w for w in [o["size"] if size else None, o["colour"], o["kind"]] if w)
    return ("an " if words[0] in "aeiou" else "a ") + words + (" " + PHRASE[o["position"]] if position else "")


def items(objects, sizes=None):
    xs = [indefinite(o, size=sizes[i] if sizes else True) for i, o in enumerate(objects)]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def sentence(s):
    return s[:1].upper() + s[1:]


def templates(scene, loc, noun, verb, sizes=None):
    """The grammar's first-caption templates for a scene (introduceStory), in its order."""
    objs = scene["objects"]
    if len(objs) == 1:
        o = objs[0]
        a, pos = indefinite(o, size=sizes[0] if sizes else True, position=False), PHRASE[o["position"]]
        return [f"{loc}, {a} {verb} {pos}.", f"there is {a} {pos} of {noun}.", f"{noun} with {a} {pos}.", f"{a} {verb} {pos} of {noun}."]
    its = items(objs, sizes)
    return [f"{loc}, there is {its}.", f"{noun} with {its}.", f"{loc} we see {its}."]


def verbs(scene):
    objs = scene["objects"]
    if len(objs) != 1:
        return ["is"]
    return ["floats", "hangs", "is"] if objs[0]["kind"] in SKY else ["sits", "stands", "is"]


def description(scene, rng=None, background_first=False):
    """A full description of `scene` in the first-caption grammar. Without `rng`: the canonical one
    ("<noun> with <objects>.", the first noun) — one fixed sentence per scene, so the GILLMapper has a
    target it can reach. With `rng` (random.Random): a random template, locative, noun and verb;
    `background_first` keeps to templates that open with the background (a 16-token caption then
    still names it)."""
    b = scene["background"]
    if not scene["objects"]:   # the grammar has no empty-scene sentence; say where we are
        return sentence(NOUNS[b][0] if rng is None else rng.choice(NOUNS[b])) + "."
    if rng is None:
        return sentence(templates(scene, LOCATIVES[b][0], NOUNS[b][0], verbs(scene)[0])[1 if len(scene["objects"]) > 1 else 2])
    ts = templates(scene, rng.choice(LOCATIVES[b]), rng.choice(NOUNS[b]), rng.choice(verbs(scene)))
    if background_first:
        ts = [t for t in ts if not t.startswith(("there is", "a ", "an "))]
    return sentence(rng.choice(ts))


def variants(scene):
    """Every sentence the grammar can write for a story's first panel (sizes dropped or not)."""
    b, out = scene["background"], set()
    for sizes in itertools.product([True, False], repeat=len(scene["objects"])):
        for loc, noun, verb in itertools.product(LOCATIVES[b], NOUNS[b], verbs(scene)):
            out.update(sentence(t) for t in templates(scene, loc, noun, verb, list(sizes)))
    return out


def hard_negatives(caption, scene):
    """Captions in `caption`'s own words that `scene` makes false only by binding: two objects' colours,
    kinds, sizes (where the caption names both) or positions exchanged, or a lone object moved to another
    slot. Random pairs can be told apart by a bag of words; these only by which attribute belongs to which
    object (issue #11's caption and attribute goals: `clip_probe.py` found the CLIP's pooled image features
    do not bind them). Each negative's objects differ from the scene's as a set of (size, colour, kind,
    position); [] when the caption does not name every object in the first-caption grammar."""
    objs, found, at = scene["objects"], [], 0
    for o in objs:
        m = re.compile(rf"\b([Aa]n?) (?:(small|big) )?{o['colour']} {o['kind']}\b").search(caption, at)
        if not m:
            return []
        p = caption.find(" " + PHRASE[o["position"]], m.end())
        if p < 0:
            return []
        found.append((m, p + 1))
        at = m.end()
    if any(found[i][1] >= found[i + 1][0].start() for i in range(len(found) - 1)):
        return []

    def write(new):
        out = caption
        for (m, p), o, n in reversed(list(zip(found, objs, new))):
            out = out[:p] + PHRASE[n["position"]] + out[p + len(PHRASE[o["position"]]):]
            words = " ".join(w for w in [n["size"] if m.group(2) else None, n["colour"], n["kind"]] if w)
            article = "an" if words[0] in "aeiou" else "a"
            article = article.capitalize() if m.group(1)[0] == "A" else article
            out = out[:m.start()] + article + " " + words + out[m.end():]
        return out

    def key(objects):
        return sorted((o["size"], o["colour"], o["kind"], o["position"]) for o in objects)
    changed = []
    if len(objs) == 1:
        for pos in PHRASE:
            if pos != objs[0]["position"]:
                changed.append([dict(objs[0], position=pos)])
    for i, j in itertools.combinations(range(len(objs)), 2):
        for a in ("colour", "kind", "size", "position"):
            if a == "size" and not (found[i][0].group(2) and found[j][0].group(2)):
                continue
            new = [dict(o) for o in objs]
            new[i][a], new[j][a] = objs[j][a], objs[i][a]
            changed.append(new)
    out = []
    for new in changed:
        text = write(new)
        if key(new) != key(objs) and text != caption and text not in out:
            out.append(text)
    return out


def check_grammar(first_panels):
    """(matched, total): real first-panel captions found among `variants` of their scene graph."""
    ok = sum(p["text"] in variants(p["scene"]) for p in first_panels)
    return ok, len(first_panels)


# MARK: caption reader (CaptionChecker.swift)

KINDS = ["ball", "box", "tree", "house", "cat", "car", "star", "balloon"]
KIND_WORDS = {**{k: k for k in KINDS}, **{("boxes" if k == "box" else k + "s"): k for k in KINDS}}
COLOURS = {c: c for c in ["red", "orange", "yellow", "green", "blue", "purple", "pink", "white"]}
SIZES = {"small": "small", "little": "small", "big": "big", "large": "big"}
POSITIONS = {"left": "left", "middle": "middle", "right": "right"}
MOVE_VERBS = {"rolls", "walks", "drives", "slides", "floats", "moves"}
LEAVE = {"leaves", "away", "off", "gone"}
PRONOUNS = {"it", "they", "them"}
COPULAS = {"is", "turns", "becomes", "are"}
ALL_BG = set(LOCATIVES)
BG_WORDS = {w: {b} for b, ws in [("day", ["sunny", "meadow", "sun", "morning", "day"]), ("night", ["night", "dark"]),
                                  ("beach", ["beach", "sea"]), ("snow", ["snow", "snowy", "winter"]), ("indoor", ["room", "indoors"]),
                                  ("forest", ["forest", "woods"]), ("city", ["city", "street"]), ("desert", ["desert", "dunes"])] for w in ws}
BG_WORDS.update({w: ALL_BG - {"indoor"} for w in ["outside", "outdoors", "open"]})


def _sentences(text):
    out, words, word = [], [], ""
    for ch in text.lower():
        if ch.isalpha() or ch == "'":
            word += ch
            continue
        if word:
            words.append(word)
            word = ""
        if ch == "?" or ch in ".!;\n":
            if words or ch == "?":
                out.append((words, ch == "?"))
            words = []
    if word:
        words.append(word)
    if words:
        out.append((words, False))
    return out


def _read(w):
    backgrounds, mentions, leaving, subject = None, [], set(), None
    colour = size = None
    i = 0
    while i < len(w):
        word = w[i]
        if word == "inside" and i + 2 < len(w) and w[i + 1] == "a" and w[i + 2] == "house":
            backgrounds = (ALL_BG if backgrounds is None else backgrounds) & {"indoor"}
            colour = size = None
            i += 3
            continue
        if word in BG_WORDS:
            backgrounds = (ALL_BG if backgrounds is None else backgrounds) & BG_WORDS[word]
            colour = size = None
        elif i + 2 < len(w) and w[i + 1] == "the" and w[i + 2] in POSITIONS and word in ("on", "in", "to"):
            if subject is not None and (word == "to" or mentions[subject]["position"] is None):
                mentions[subject]["position"] = POSITIONS[w[i + 2]]
            colour = size = None
            i += 2
        elif word in KIND_WORDS:
            mentions.append({"kind": KIND_WORDS[word], "colour": colour, "size": size, "position": None})
            subject = len(mentions) - 1
            colour = size = None
        elif word in COLOURS or word in SIZES:
            nxt = w[i + 1] if i + 1 < len(w) else None
            modifier = nxt in KIND_WORDS or nxt in COLOURS or nxt in SIZES
            key, value = ("colour", COLOURS[word]) if word in COLOURS else ("size", SIZES[word])
            if subject is not None and i > 0 and w[i - 1] in COPULAS and not modifier:
                mentions[subject][key] = value
                colour = size = None
            elif key == "colour":
                colour = value
            else:
                size = value
        else:
            colour = size = None
            if subject is not None:
                if word in PRONOUNS:
                    subject = None
                elif word in MOVE_VERBS:
                    mentions[subject]["position"] = None
                elif word in LEAVE:
                    leaving.add(subject)
                elif word in ("grows", "bigger"):
                    mentions[subject]["size"] = "big"
                elif word in ("shrinks", "smaller"):
                    mentions[subject]["size"] = "small"
        i += 1
    return backgrounds, [m for j, m in enumerate(mentions) if j not in leaving]


def _dialogue(text, sentences):
    if "?" in text:
        return True
    low = text.lower()
    for marker in ("q:", "a:"):
        start = 0
        while (j := low.find(marker, start)) >= 0:
            if j == 0 or not low[j - 1].isalpha():
                return True
            start = j + len(marker)
    openers = {"yes", "no", "is", "are", "does", "do", "what", "which", "where", "how"}
    return any(ws and ws[0] in openers for ws, _ in sentences)


def check_caption(caption, scene):
    """{attribute: (claims, correct)}, dialogue_text, hallucinated kinds, repeated kinds — as CaptionChecker.check."""
    sents = _sentences(caption)
    backgrounds, mentions = None, []
    for ws, question in sents:
        if question:
            continue
        b, ms = _read(ws)
        if b is not None:
            backgrounds = (ALL_BG if backgrounds is None else backgrounds) & b
        mentions += ms
    v = {a: [0, 0] for a in ["background", "kind", "colour", "size", "position"]}

    def judge(a, ok):
        v[a][0] += 1
        v[a][1] += int(ok)
    if backgrounds is not None:
        judge("background", scene["background"] in backgrounds)
    halluc = set()
    for m in mentions:
        same = [o for o in scene["objects"] if o["kind"] == m["kind"]]
        judge("kind", bool(same))
        if not same:
            halluc.add(m["kind"])
            continue
        for a in ("colour", "size", "position"):
            if m[a] is not None:
                judge(a, any(o[a] == m[a] for o in same))
    named = {}
    for m in mentions:
        named[m["kind"]] = named.get(m["kind"], 0) + 1
    held = {k: sum(o["kind"] == k for o in scene["objects"]) for k in named}
    repeated = sorted(k for k, n in named.items() if 0 < held[k] < n)
    return v, _dialogue(caption, sents), sorted(halluc), repeated
