import Foundation
import Plot

/// The one place where user text becomes HTML. Plot escapes `<>&` in `.text(...)` but keeps anything
/// that looks like an entity (`&lt;` stays `&lt;` and displays as `<`), and it writes attribute values
/// verbatim. So every text node and every attribute value in the gallery goes through these functions.
public enum HTMLEscape {
    /// Escapes text content: `&`, `<`, `>`; NUL becomes U+FFFD (parsers drop or reject it).
    public static func text(_ string: String) -> String {
        escape(string, quotes: false)
    }

    /// Escapes a double-quoted attribute value: `&`, `<`, `>`, `"`, `'`.
    public static func attribute(_ string: String) -> String {
        escape(string, quotes: true)
    }

    private static func escape(_ string: String, quotes: Bool) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where quotes: out += "&quot;"
            case "'" where quotes: out += "&#39;"
            case "\u{0}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Gallery pages are built from Plot's custom elements so that every attribute passes through
/// ``HTMLEscape/attribute(_:)``; typed Plot modifiers such as `.href(_:)` would write values raw.
typealias BodyNode = Node<HTML.BodyContext>

extension Node {
    /// Escaped text content.
    static func txt(_ string: String) -> Node {
        .raw(HTMLEscape.text(string))
    }

    /// An attribute whose value is escaped; an empty value renders as a bare attribute (`alt`).
    static func attr(_ name: String, _ value: String) -> Node {
        .attribute(Attribute(name: name, value: HTMLEscape.attribute(value), ignoreIfValueIsEmpty: false))
    }

    /// An element with escaped attributes and children.
    static func el(_ name: String, _ attributes: [(String, String)] = [], _ children: [Node] = []) -> Node {
        .element(named: name, nodes: attributes.map { attr($0.0, $0.1) } + children)
    }

    /// An element holding only escaped text.
    static func el(_ name: String, _ attributes: [(String, String)] = [], text: String) -> Node {
        el(name, attributes, [txt(text)])
    }

    /// A void element (`img`, `input`, `meta`, `link`), written `<img … />`.
    static func void(_ name: String, _ attributes: [(String, String)]) -> Node {
        .selfClosedElement(named: name, attributes: attributes.map {
            Attribute<Context>(name: $0.0, value: HTMLEscape.attribute($0.1), ignoreIfValueIsEmpty: false)
        })
    }
}

/// Which page is being rendered: decides the relative prefix of links to shared files.
enum PageLocation {
    case root       // index.html, report.html
    case entries    // entries/<name>.html

    /// Prefix that leads from the page back to the gallery root.
    var toRoot: String { self == .root ? "" : "../" }
}

/// The frame shared by all pages: head with local CSS, a top bar, the content, a footer and local JS.
enum PageShell {
    static func render(title: String, location: PageLocation, document: GalleryDocument,
                       current: String, body: [BodyNode]) -> String {
        let root = location.toRoot
        let head: [Node<HTML.HeadContext>] = [
            .void("meta", [("charset", "utf-8")]),
            .void("meta", [("name", "viewport"), ("content", "width=device-width, initial-scale=1")]),
            .void("meta", [("name", "color-scheme"), ("content", "light dark")]),
            .el("title", text: title),
            .void("link", [("rel", "stylesheet"), ("href", root + "assets/gallery.css")]),
        ]
        let nav: BodyNode = .el("header", [("class", "topbar")], [
            .el("a", [("class", "brand"), ("href", root + "index.html")], text: document.title),
            .el("span", [("class", "workflow")], text: document.workflowName),
            .el("nav", [], [
                .el("a", [("href", root + "index.html"), ("class", current == "index" ? "active" : "")],
                    text: "Entries"),
                .el("a", [("href", root + "report.html"), ("class", current == "report" ? "active" : "")],
                    text: "Run report"),
            ]),
        ])
        let footer: BodyNode = .el("footer", [("class", "footer")], [
            .txt("Rendered by Storyloom at "),
            .el("time", [], text: document.generatedAt),
        ])
        let script: BodyNode = .el("script", [("src", root + "assets/gallery.js")])
        let html = HTML(
            .attribute(named: "lang", value: "en"),
            .head(.group(head)),
            .body(.group([nav, .el("main", [("class", "page")], body), footer, script]))
        )
        return html.render()
    }
}
