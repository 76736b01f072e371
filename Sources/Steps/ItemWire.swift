import Foundation
import Imaging
import Stories
import Workflow

/// The JSON an external model sees for one item — over HTTP (`http`) or as a line on stdin (`command` in
/// batch mode) — and what it answers.
///
/// Request: `{"item": "story-00001#3", "seed": 123, "inputs": {"text": "…", "image": {"base64": "…", "ext": "png"}}}`
/// (an image is `{"path": "/abs/file.png", "ext": "png"}` with `images: path`). Answer: an object with
/// any of `text`, `number`, `image` (`{"base64": "…", "ext": "png"}`), or `error` to fail the item.
public enum ItemWire {
    public enum ImageEncoding: String, ParamChoice {
        case base64, path
    }

    static func request(_ item: StepItem, images: ImageEncoding, services: StepServices) throws -> JSONValue {
        var inputs: [String: JSONValue] = [:]
        for (name, value) in item.inputs { inputs[name] = try json(value, images: images, services: services) }
        return .object(["item": .string(item.id), "seed": .number(Double(item.seed)), "inputs": .object(inputs)])
    }

    static func json(_ value: Value, images: ImageEncoding, services: StepServices) throws -> JSONValue {
        switch value {
        case .text(let s): return .string(s)
        case .number(let n): return n.isFinite ? .number(n) : .null
        case .image(let ref):
            let url = services.imageURL(ref)
            switch images {
            case .path: return .object(["path": .string(url.path), "ext": .string(ref.ext)])
            case .base64:
                let data = try services.loadImageData(ref)
                return .object(["base64": .string(data.base64EncodedString()), "ext": .string(ref.ext)])
            }
        case .vector(let v): return .array(v.map { .number(Double($0)) })
        case .ranked(let c): return .array(c.map { .object(["id": .string($0.id), "score": .number($0.score)]) })
        case .choice(let c, let p): return .object(["choice": .string(c), "probability": .number(p)])
        case .list(let l): return .array(try l.map { try json($0, images: images, services: services) })
        case .record(let fields): return .object(try fields.mapValues { try json($0, images: images, services: services) })
        }
    }

    /// The outputs of an answer; throws with the answer's `error`, or when it is not what was expected.
    static func outputs(_ data: Data, source: String, services: StepServices) throws -> Outputs {
        guard let answer = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(let o) = answer else {
            let text = String(decoding: data.prefix(200), as: UTF8.self)
            throw StepError("\(source) answered \"\(text)\"\(data.count > 200 ? "…" : ""), expected a JSON object")
        }
        if let e = o["error"] { throw StepError("\(source): \(e.stringValue ?? Explainer.show(e))") }
        var out: Outputs = [:]
        if let t = o["text"] {
            guard let s = t.stringValue else { throw StepError("\(source): \"text\" must be a string") }
            out["text"] = .text(s)
        }
        if let n = o["number"] {
            guard let d = n.doubleValue else { throw StepError("\(source): \"number\" must be a number") }
            out["number"] = .number(d)
        }
        if let i = o["image"] {
            guard let b64 = i["base64"]?.stringValue, let bytes = Data(base64Encoded: b64) else {
                throw StepError("\(source): \"image\" must be {\"base64\": …, \"ext\": \"png\"}")
            }
            let ext = (i["ext"]?.stringValue ?? "png").lowercased()
            guard ["png", "jpg", "jpeg"].contains(ext) else { throw StepError("\(source): image ext \"\(ext)\" is not png or jpg") }
            // Decoding checks it really is an image before it enters the store.
            do { _ = try Image.decode(bytes) } catch { throw StepError("\(source) sent an unreadable image: \(error)") }
            out["image"] = .image(ImageRef(hash: try services.media.put(bytes, ext: ext), ext: ext))
        }
        guard !out.isEmpty else {
            throw StepError("\(source) answered with none of text, number, image (keys: \(o.keys.sorted().joined(separator: ", ")))")
        }
        return out
    }
}
