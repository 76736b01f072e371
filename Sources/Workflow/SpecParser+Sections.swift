import Foundation
import Stories
import Yams

/// The `collection:`, `models:` and `gallery:` sections.
extension SpecParser {
    func parseCollection(_ node: Node?, parent: Node, ctx: inout Context) -> CollectionSpec? {
        guard let node else {
            ctx.errors.append(ctx.error(parent, "missing required key \"collection\" (a path, an importer, or world: {seed, stories, dialogues})"))
            return nil
        }
        if let path = node.scalar?.string {
            return CollectionSpec(source: .native(path: path), allowOutsideRoot: false, limit: nil, location: ctx.location(node))
        }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "collection must be a path or a mapping"))
            return nil
        }
        ctx.checkKeys(map, allowed: Self.collectionKeys + ["annotations", "images", "csv", "text_column", "image_column",
                                                           "story_column", "order_column", "use_original_text", "dialogues"],
                      what: "collection")
        let allow = map["allow_outside_root"].flatMap { ctx.bool($0, key: "allow_outside_root") } ?? false
        let limit = map["limit"].flatMap { ctx.int($0, key: "limit", min: 1) }
        let sources = ["path", "importer", "world"].filter { map[$0] != nil }
        guard sources.count == 1 else {
            ctx.errors.append(ctx.error(node, sources.isEmpty
                ? "collection needs one of \"path\", \"importer\" or \"world\""
                : "collection has both \(sources.map { "\"\($0)\"" }.joined(separator: " and ")); give only one"))
            return nil
        }
        var source: CollectionSource?
        if let p = map["path"], let path = ctx.string(p, key: "path") {
            source = .native(path: path)
        } else if let i = map["importer"], let kind = ctx.string(i, key: "importer") {
            var options: [String: String] = [:]
            for (k, v) in map {
                guard let key = k.string, !["importer", "allow_outside_root", "limit", "options"].contains(key) else { continue }
                options[key] = v.scalar?.string
            }
            if let extra = map["options"]?.mapping {
                for (k, v) in extra { if let key = k.string { options[key] = v.scalar?.string } }
            }
            source = .importer(kind: kind, options: options)
        } else if let w = map["world"] {
            if let wm = w.mapping {
                ctx.checkKeys(wm, allowed: Self.worldKeys, what: "world")
                let seed = wm["seed"].flatMap { ctx.int($0, key: "seed", min: 0) } ?? 0
                let stories = wm["stories"].flatMap { ctx.int($0, key: "stories", min: 0) } ?? 100
                let dialogues = wm["dialogues"].flatMap { ctx.int($0, key: "dialogues", min: 0) } ?? 0
                let display: Int? = wm["display_size"].flatMap { n in
                    n.scalar?.string == "none" ? nil : ctx.int(n, key: "display_size", min: 16)
                } ?? 256
                source = .world(seed: UInt64(seed), stories: stories, dialogues: dialogues, displaySize: display)
            } else {
                ctx.errors.append(ctx.error(w, "world must be a mapping like {seed: 1, stories: 100, dialogues: 50}"))
            }
        }
        return source.map { CollectionSpec(source: $0, allowOutsideRoot: allow, limit: limit, location: ctx.location(node)) }
    }

    func parseModels(_ node: Node?, ctx: inout Context) -> [String: ModelSpec] {
        guard let node else { return [:] }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "models must be a mapping of name: {kind, path}"))
            return [:]
        }
        var out: [String: ModelSpec] = [:]
        for (k, v) in map {
            guard let name = k.string else { continue }
            guard let m = v.mapping else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" must be a mapping with \"kind\" and \"path\""))
                continue
            }
            ctx.checkKeys(m, allowed: Self.modelKeys, what: "model \"\(name)\"")
            guard let kindNode = m["kind"], let kind = ctx.string(kindNode, key: "kind") else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" is missing \"kind\" (one of \(modelKinds.joined(separator: ", ")))"))
                continue
            }
            if !modelKinds.contains(kind) {
                ctx.errors.append(ctx.error(kindNode, "unknown model kind \"\(kind)\"\(Suggest.hint(kind, modelKinds)); known kinds: \(modelKinds.joined(separator: ", "))"))
            }
            guard let pathNode = m["path"], let path = ctx.string(pathNode, key: "path") else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" is missing \"path\" (its folder)"))
                continue
            }
            out[name] = ModelSpec(name: name, kind: kind, path: path, location: ctx.location(k))
        }
        return out
    }

    func parseGallery(_ node: Node?, ctx: inout Context) -> GallerySpec {
        guard let node else { return GallerySpec(title: nil, columns: []) }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "gallery must be a mapping with title and columns"))
            return GallerySpec(title: nil, columns: [])
        }
        ctx.checkKeys(map, allowed: Self.galleryKeys, what: "gallery")
        let title = map["title"].flatMap { ctx.string($0, key: "title") }
        var columns: [InputRef] = []
        if let c = map["columns"] {
            if let seq = c.sequence {
                for n in seq { if let s = ctx.string(n, key: "columns") { columns.append(Self.inputRef(s, location: ctx.location(n))) } }
            } else {
                ctx.errors.append(ctx.error(c, "gallery columns must be a list like [gen.image, clipsim.score]"))
            }
        }
        var charts: [ChartRequest] = []
        if let c = map["charts"] {
            if let seq = c.sequence {
                charts = seq.compactMap { parseChart($0, ctx: &ctx) }
            } else {
                ctx.errors.append(ctx.error(c, "gallery charts must be a list of charts (title, y, x, series)"))
            }
        }
        return GallerySpec(title: title, columns: columns, charts: charts)
    }

    func parseChart(_ node: Node, ctx: inout Context) -> ChartRequest? {
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "a chart must be a mapping with title, y, x and series"))
            return nil
        }
        ctx.checkKeys(map, allowed: Self.chartKeys, what: "chart")
        let title = map["title"].flatMap { ctx.string($0, key: "title") } ?? "chart"
        let y = map["y"].flatMap { ctx.string($0, key: "y") } ?? "mean"
        let kind = map["kind"].flatMap { ctx.string($0, key: "kind") } ?? "line"
        if let k = map["kind"], kind != "line" && kind != "bar" {
            ctx.errors.append(ctx.error(k, "chart kind must be line or bar, not \"\(kind)\""))
        }
        guard let xNode = map["x"], let xs = xNode.sequence else {
            ctx.errors.append(ctx.error(map["x"] ?? node, "chart \"\(title)\" needs x: a list of labels"))
            return nil
        }
        let xLabels = xs.compactMap { ctx.string($0, key: "x") }
        guard let sNode = map["series"], let series = sNode.mapping else {
            ctx.errors.append(ctx.error(map["series"] ?? node, "chart \"\(title)\" needs series: a mapping from a name to a list of score columns, one per x label"))
            return nil
        }
        var out: [(name: String, columns: [InputRef?])] = []
        for (nameNode, valuesNode) in series {
            guard let name = ctx.string(nameNode, key: "series") else { continue }
            guard let values = valuesNode.sequence else {
                ctx.errors.append(ctx.error(valuesNode, "series \"\(name)\" must be a list of score columns like [sim.score, ~]"))
                continue
            }
            if values.count != xLabels.count {
                ctx.errors.append(ctx.error(valuesNode, "series \"\(name)\" has \(values.count) values for \(xLabels.count) x labels"))
            }
            out.append((name, values.map { v in
                if v.scalar?.string == "~" || v.scalar?.string == "null" || v.scalar?.string == "" { return nil }
                return ctx.string(v, key: "series").map { Self.inputRef($0, location: ctx.location(v)) }
            }))
        }
        return ChartRequest(title: title, yLabel: y, xLabels: xLabels, series: out, kind: kind, location: ctx.location(node))
    }
}
