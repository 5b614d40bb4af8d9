import CZlib

/// A zlib failure: the operation and zlib's return code (and message, when it gives one).
public struct ZlibError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var code: Int32
    public var message: String?
    public var description: String { "\(operation) failed (zlib \(code)\(message.map { ": \($0)" } ?? ""))" }
}

/// The project's one zlib wrapper: a streaming gzip deflater or a gzip / raw-deflate inflater over
/// caller-owned buffers. Recordings, storage files and importers all compress and decompress through it.
///
/// Use: set the input (``setInput(_:count:)``) and output (``setOutput(_:count:)``), call ``deflate(finish:)``
/// or ``inflate()``, read what is left with ``availableIn`` / ``availableOut``. One stream per thread.
public final class Zlib {
    public enum Kind: Sendable { case gzipDeflate(level: Int32), gzipInflate, rawInflate }
    public enum Status: Sendable, Equatable { case ok, streamEnd, bufferFull }

    public let kind: Kind
    private let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    public init(_ kind: Kind) throws(ZlibError) {
        self.kind = kind
        strm.initialize(to: z_stream())
        let rc: Int32
        switch kind {
        case .gzipDeflate(let level): rc = czlib_deflate_init_gzip(strm, level)
        case .gzipInflate: rc = czlib_inflate_init_gzip(strm)
        case .rawInflate: rc = inflateInit2_(strm, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        }
        guard rc == Z_OK else {
            strm.deallocate()
            throw ZlibError(operation: { if case .gzipDeflate = kind { "deflateInit2" } else { "inflateInit2" } }(), code: rc)
        }
    }

    deinit {
        if case .gzipDeflate = kind { deflateEnd(strm) } else { inflateEnd(strm) }
        strm.deallocate()
    }

    public func setInput(_ bytes: UnsafePointer<UInt8>?, count: Int) {
        strm.pointee.next_in = UnsafeMutablePointer(mutating: bytes)
        strm.pointee.avail_in = uInt(count)
    }

    public func setOutput(_ bytes: UnsafeMutablePointer<UInt8>?, count: Int) {
        strm.pointee.next_out = bytes
        strm.pointee.avail_out = uInt(count)
    }

    /// Input bytes not consumed yet, and where they start.
    public var availableIn: Int { Int(strm.pointee.avail_in) }
    public var nextIn: UnsafePointer<UInt8>? { strm.pointee.next_in.map { UnsafePointer($0) } }
    /// Output room left.
    public var availableOut: Int { Int(strm.pointee.avail_out) }

    /// Compresses the input; with `finish` the gzip member is completed (``Status/streamEnd`` once it is).
    public func deflate(finish: Bool) throws(ZlibError) -> Status {
        let rc = CZlib.deflate(strm, finish ? Z_FINISH : Z_NO_FLUSH)
        return try status(rc, "deflate")
    }

    /// Decompresses the input; ``Status/streamEnd`` at the end of a gzip member or deflate stream.
    public func inflate() throws(ZlibError) -> Status {
        let rc = CZlib.inflate(strm, Z_NO_FLUSH)
        return try status(rc, "inflate")
    }

    /// Starts a new member (deflate) or stream (inflate) on the same settings.
    public func reset() {
        if case .gzipDeflate = kind { deflateReset(strm) } else { inflateReset(strm) }
    }

    /// The most `count` input bytes can deflate to.
    public func deflateBound(_ count: Int) -> Int { Int(CZlib.deflateBound(strm, uLong(count))) }

    private func status(_ rc: Int32, _ operation: String) throws(ZlibError) -> Status {
        switch rc {
        case Z_OK: return .ok
        case Z_STREAM_END: return .streamEnd
        case Z_BUF_ERROR: return .bufferFull
        default: throw ZlibError(operation: operation, code: rc, message: strm.pointee.msg.map { String(cString: $0) })
        }
    }
}

/// In-memory gzip (RFC 1952) through ``Zlib``.
public enum Gzip {
    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(ZlibError) -> [UInt8] {
        let z = try Zlib(.gzipDeflate(level: level))
        var out = [UInt8](repeating: 0, count: z.deflateBound(input.count) + 32)
        let status = try input.withUnsafeBufferPointer { (inp) throws(ZlibError) -> Zlib.Status in
            try out.withUnsafeMutableBufferPointer { (o) throws(ZlibError) -> Zlib.Status in
                z.setInput(inp.baseAddress, count: inp.count)
                z.setOutput(o.baseAddress, count: o.count)
                return try z.deflate(finish: true)
            }
        }
        guard status == .streamEnd else { throw ZlibError(operation: "deflate", code: Z_BUF_ERROR) }
        out.removeLast(z.availableOut)
        return out
    }

    public static func decompress(_ input: [UInt8]) throws(ZlibError) -> [UInt8] {
        let z = try Zlib(.gzipInflate)
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        try input.withUnsafeBufferPointer { (inp) throws(ZlibError) in
            z.setInput(inp.baseAddress, count: inp.count)
            while true {
                let (status, produced) = try chunk.withUnsafeMutableBufferPointer { (o) throws(ZlibError) -> (Zlib.Status, Int) in
                    z.setOutput(o.baseAddress, count: o.count)
                    let s = try z.inflate()
                    return (s, o.count - z.availableOut)
                }
                result += chunk[..<produced]
                if status == .streamEnd { return }
                if produced == 0 && z.availableIn == 0 { throw ZlibError(operation: "inflate", code: Z_BUF_ERROR, message: "truncated input") }
            }
        }
        return result
    }
}
