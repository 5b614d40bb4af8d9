import MarketData
import Kafka
import Foundation

/// A real headless Chromium driven through chromedriver's W3C WebDriver protocol (what Selenium
/// speaks), for tests that click and read a page. ``start()`` runs `/usr/bin/chromedriver` on a
/// free port and opens one browser session; ``quit()`` (or deinit) ends both.
public final class WebDriver: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private let driver: Process
    private let base: String
    private var session = ""

    /// chromedriver and Chromium where Debian's `chromium-driver` and `chromium` put them (or
    /// `CHROMEDRIVER`/`CHROMIUM`); nil when either is missing.
    public static var available: Bool { paths() != nil }

    static func paths() -> (driver: String, browser: String)? {
        let env = ProcessInfo.processInfo.environment
        let driver = env["CHROMEDRIVER"] ?? "/usr/bin/chromedriver", browser = env["CHROMIUM"] ?? "/usr/bin/chromium"
        let fm = FileManager.default
        return fm.isExecutableFile(atPath: driver) && fm.isExecutableFile(atPath: browser) ? (driver, browser) : nil
    }

    private init(driver: Process, base: String) { self.driver = driver; self.base = base }

    deinit { if driver.isRunning { driver.terminate() } }

    public static func start(width: Int = 1300, height: Int = 900, log: String) async throws -> WebDriver {
        guard let (driverPath, browser) = paths() else { throw Failure(description: "chromium and chromium-driver are not installed (scripts/setup.sh installs them)") }
        let port = try LocalBroker.freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: driverPath)
        p.arguments = ["--port=\(port)"]
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        out.seekToEndOfFile()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let wd = WebDriver(driver: p, base: "http://127.0.0.1:\(port)")
        var last: (status: Int?, body: String) = (nil, "")
        for _ in 0..<100 {
            last = await httpRequest("GET", wd.base + "/status", timeout: 2)
            if last.status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard last.status == 200 else { throw Failure(description: "chromedriver did not answer on port \(port): \(last.body.prefix(300))") }
        let args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=\(width),\(height)"]
        let caps = """
        {"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":\(JSONOutput.quoted(browser)),"args":[\(args.map(JSONOutput.quoted).joined(separator: ","))]}}}}
        """
        let answer = try await wd.call("POST", "/session", caps)
        guard let id = answer["sessionId"]?.string else { throw Failure(description: "no session in \(answer)") }
        wd.session = "/session/\(id)"
        return wd
    }

    /// Ends the browser session and chromedriver.
    public func quit() async {
        if !session.isEmpty { _ = await httpRequest("DELETE", base + session, timeout: 10) }
        if driver.isRunning { driver.terminate() }
    }

    public func open(_ url: String) async throws {
        _ = try await call("POST", session + "/url", #"{"url":\#(JSONOutput.quoted(url))}"#)
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    public func run(_ script: String) async throws -> JSONValue {
        try await call("POST", session + "/execute/sync", #"{"script":\#(JSONOutput.quoted(script)),"args":[]}"#)
    }

    /// The first element matching `css`, or nil.
    public func element(_ css: String) async throws -> String? {
        let (status, body) = await httpRequest("POST", base + session + "/element", body: #"{"using":"css selector","value":\#(JSONOutput.quoted(css))}"#, timeout: 10)
        guard status == 200, let v = JSONValue.parse(body)?["value"], case .object(let o) = v else { return nil }
        return o.values.first?.string
    }

    /// Clicks the element matching `css` the way a user does (WebDriver moves the pointer there and clicks).
    public func click(_ css: String) async throws {
        guard let id = try await element(css) else { throw Failure(description: "no element \(css) to click") }
        _ = try await call("POST", session + "/element/\(id)/click", "{}")
    }

    /// Selects `value` in the `<select>` matching `css` by clicking its option.
    public func select(_ css: String, value: String) async throws {
        try await click("\(css) option[value=\(JSONOutput.quoted(value))]")
    }

    /// The element's `textContent`, trimmed; nil when there is no such element.
    public func text(_ css: String) async throws -> String? {
        try await run("const e = document.querySelector(\(JSONOutput.quoted(css))); return e ? e.textContent.trim() : null;").string
    }

    /// The element's attribute; nil when there is no such element or attribute.
    public func attribute(_ css: String, _ name: String) async throws -> String? {
        try await run("const e = document.querySelector(\(JSONOutput.quoted(css))); return e ? e.getAttribute(\(JSONOutput.quoted(name))) : null;").string
    }

    /// The element's `data-value` as a number; nil when missing or empty.
    public func number(_ css: String) async throws -> Double? {
        try await attribute(css, "data-value").flatMap(Double.init)
    }

    /// A PNG of the window.
    public func screenshot() async throws -> Data {
        guard let b64 = try await call("GET", session + "/screenshot", nil).string, let data = Data(base64Encoded: b64) else {
            throw Failure(description: "no screenshot")
        }
        return data
    }

    private func call(_ method: String, _ path: String, _ body: String?) async throws -> JSONValue {
        let (status, text) = await httpRequest(method, base + path, body: body, timeout: 30)
        guard let status, let answer = JSONValue.parse(text) else { throw Failure(description: "\(method) \(path): no answer (\(text.prefix(200)))") }
        guard status == 200 else { throw Failure(description: "\(method) \(path): \(status) \(answer["value"]?["message"]?.string ?? text)") }
        return answer["value"] ?? .null
    }
}
