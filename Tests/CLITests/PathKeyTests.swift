import Foundation
import Testing

/// Every path key of a workflow (collection `path`, importer `annotations`/`images`, model `path`, `store`)
/// resolves the same way: absolute as written, `~` to the home folder, relative to the workflow file's
/// folder; `--store` and `--output` on the command line are relative to the current directory.
@Suite struct PathKeyTests {
    static let thumbnails = """
        steps:
          - id: small
            use: thumbnail
            inputs: {image: image}
            params: {width: 8, height: 8}
        """

    func workflow(collection: String, store: String?, name: String = "paths") -> String {
        "name: \(name)\ncollection: \(collection)\n\(Self.thumbnails)\n" + (store.map { "store: \($0)\n" } ?? "")
    }

    @Test("store: absolute, relative, ~, through a symlink, and .. after a symlink land where the user meant")
    func storeKey() throws {
        let cli = try CLI()
        try cli.writeImageStories(2, in: "data/collection")
        let home = try cli.folder("home")
        let elsewhere = try cli.folder("elsewhere/inner")
        try cli.symlink("w/link", to: "elsewhere")
        try cli.symlink("w/deep", to: "elsewhere/inner")
        let cwd = try cli.folder("cwd")   // runs start here, so nothing may resolve against the current directory
        let root = cli.root.path
        let cases: [(key: String, store: String, gallery: String)] = [
            ("\(root)/abs/store", "abs/store", "abs/galleries/paths/index.html"),
            ("../rel/store", "rel/store", "rel/galleries/paths/index.html"),
            ("~/tilde/store", "home/tilde/store", "home/tilde/galleries/paths/index.html"),
            ("link/store", "elsewhere/store", "elsewhere/galleries/paths/index.html"),
            // The kernel's reading: `..` climbs from the link's target (elsewhere/inner), not from w/.
            ("deep/../up/store", "elsewhere/up/store", "elsewhere/up/galleries/paths/index.html"),
        ]
        for c in cases {
            try cli.write(workflow(collection: "../data/collection", store: c.key), to: "w/wf.yaml")
            let run = try cli.run(["run", cli.root.appendingPathComponent("w/wf.yaml").path, "--quiet"], in: cwd,
                                  environment: ["HOME": home.path])
            #expect(run.status == 0, "store: \(c.key): \(run.stderr)")
            #expect(cli.exists("\(c.store)/store.sqlite"), "store: \(c.key) did not land in \(c.store)")
            #expect(cli.exists(c.gallery), "store: \(c.key): no gallery at \(c.gallery)")
            #expect(run.stdout.contains("gallery: "))
        }
        // Nothing was joined under the workflow's folder or the current directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.root.appendingPathComponent("w").path).sorted() == ["deep", "link", "wf.yaml"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: cwd.path).isEmpty)
        #expect(!cli.exists("w/up") && FileManager.default.fileExists(atPath: elsewhere.path))
    }

    @Test("collection and importer paths: absolute, ~ and symlinked folders all load the same stories")
    func collectionKeys() throws {
        let cli = try CLI()
        try cli.writeImageStories(2, in: "data/collection")
        try cli.symlink("w/clink", to: "data/collection")
        let csvImages = try cli.folder("data/csvimages")
        for n in 1...3 {
            try FileManager.default.copyItem(at: cli.root.appendingPathComponent("data/collection/images/1-1.png"),
                                             to: csvImages.appendingPathComponent("p\(n).png"))
        }
        try cli.write("image,text\np1.png,One.\np2.png,Two.\np3.png,Three.\n", to: "data/panels.csv")
        let data = cli.root.appendingPathComponent("data").path
        let cases: [(collection: String, panels: Int)] = [
            ("\(data)/collection", 4),
            ("~/collection", 4),
            ("clink", 4),
            ("{importer: csv, annotations: ~/panels.csv, images: \(data)/csvimages}", 3),
            ("{importer: csv, annotations: clink/../panels.csv, images: ../data/csvimages}", 3),
        ]
        for (i, c) in cases.enumerated() {
            try cli.write(workflow(collection: c.collection, store: nil, name: "c\(i)"), to: "w/wf.yaml")
            let run = try cli.run(["run", "w/wf.yaml", "--store", "store", "--json"], environment: ["HOME": data])
            #expect(run.status == 0, "collection: \(c.collection): \(run.stderr)")
            let summary = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            let steps = summary?["steps"] as? [[String: Any]] ?? []
            let done = (steps.first?["ran"] as? Int ?? 0) + (steps.first?["cached"] as? Int ?? 0)
            #expect(done == c.panels, "collection: \(c.collection)")
            #expect(steps.first?["failed"] as? Int == 0, "collection: \(c.collection): \(run.stdout)")
        }
    }

    @Test("model path: relative, absolute, ~, a symlinked folder and a folder of links give one digest, which follows the weights")
    func modelKey() throws {
        let cli = try CLI()
        try cli.writeImageStories(1, in: "data/collection")
        try cli.write(#"{"model_type": "clip"}"#, to: "data/model/config.json")
        try cli.write("weights v1", to: "data/model/weights.bin")
        try cli.write("tokenizer", to: "data/model/sub/vocab.json")
        try cli.symlink("w/mlink", to: "data/model")
        // The Hugging Face cache's layout: a folder of links to blobs.
        for file in ["config.json", "weights.bin", "sub/vocab.json"] { try cli.symlink("data/hf/\(file)", to: "data/model/\(file)") }
        let data = cli.root.appendingPathComponent("data").path

        func digest(_ path: String) throws -> String {
            try cli.write("""
                name: m
                collection: ../data/collection
                models:
                  clip: {kind: clip, path: \(path)}
                steps:
                  - id: emb
                    use: embed
                    model: clip
                    inputs: {image: image}
                """, to: "w/wf.yaml")
            let out = try cli.run(["explain", "w/wf.yaml", "emb", "s1#1", "--store", "store"], environment: ["HOME": data])
            #expect(out.status == 0, "model path \(path): \(out.stderr)")
            let line = out.stdout.split(separator: "\n").first { $0.hasPrefix("model: clip (clip) ") } ?? ""
            #expect(line.contains("\(data)/model digest ") || line.contains("/w/mlink digest ") || line.contains("\(data)/hf digest "),
                    "model path \(path) resolved to: \(line)")
            return String(line.split(separator: " ").last ?? "")
        }
        let reference = try digest("../data/model")
        #expect(reference.count == 16)
        for path in ["\(data)/model", "~/model", "mlink", "../data/hf"] {
            #expect(try digest(path) == reference, "model path \(path)")
        }
        try cli.write("weights, second version", to: "data/model/weights.bin")
        #expect(try digest("mlink") != reference)
        #expect(try digest("../data/hf") == (try digest("../data/model")))
    }

    @Test("--store and --output on the command line are relative to the current directory, ~ included")
    func commandLinePaths() throws {
        let cli = try CLI()
        try cli.writeImageStories(2, in: "data/collection")
        try cli.write(workflow(collection: "../data/collection", store: "ignored/store"), to: "w/wf.yaml")
        let cwd = try cli.folder("cwd")
        let home = try cli.folder("home")
        try cli.symlink("cwd/glink", to: "elsewhere")
        _ = try cli.folder("elsewhere")
        let env = ["HOME": home.path]

        #expect(try cli.run(["run", "../w/wf.yaml", "--store", "cli-store", "--quiet"], in: cwd, environment: env).status == 0)
        #expect(cli.exists("cwd/cli-store/store.sqlite") && cli.exists("cwd/galleries/paths/index.html"))
        #expect(!cli.exists("w/cli-store") && !cli.exists("w/ignored"))

        for (output, expected) in [("out", "cwd/out"), ("~/g", "home/g"), ("glink/g", "elsewhere/g"),
                                   (cli.root.appendingPathComponent("abs-g").path, "abs-g")] {
            let g = try cli.run(["gallery", "../w/wf.yaml", "--store", "cli-store", "--output", output], in: cwd, environment: env)
            #expect(g.status == 0, "--output \(output): \(g.stderr)")
            #expect(cli.exists("\(expected)/index.html"), "--output \(output) did not land in \(expected)")
        }
        let tilde = try cli.run(["run", "../w/wf.yaml", "--store", "~/s", "--quiet"], in: cwd, environment: env)
        #expect(tilde.status == 0 && cli.exists("home/s/store.sqlite"))
        let stats = try cli.run(["cache", "stats", "--store", "~/s"], in: cwd, environment: env)
        #expect(stats.status == 0 && stats.stdout.contains("results   4"))
        #expect(!cli.exists("cwd/~"))
    }
}
