import Foundation

/// Where PostgreSQL read models are: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…]`
/// (or `postgres://`), with libpq's conventions for what the URL leaves out
/// (docs/read-models.md, "PostgreSQL"): `PGUSER`, `PGHOST`, `PGPORT`,
/// `PGDATABASE`, and the password from `PGPASSWORD` or the password file
/// (`PGPASSFILE`, else `~/.pgpass`).
///
/// Its ``description`` never shows the password: every message that names
/// the database uses it.
package struct PostgresLocation: Sendable, CustomStringConvertible {
    package var user: String
    package var password: String?
    package var host: String
    package var port: Int
    package var database: String
    package var sslMode: SSLMode
    /// `sslrootcert`: the CA certificates (PEM) that verify-ca and verify-full trust (default: the system's).
    package var sslRootCert: String?
    /// `connect_timeout`, in seconds.
    package var connectTimeout: Int

    /// libpq's modes; `allow` is taken as `prefer`.
    package enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// Whether `text` names a PostgreSQL database rather than a SQLite file.
    package static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// Parses a URL; `environment` stands for the process's (tests pass their own).
    package init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard PostgresLocation.isURL(text), let url = URLComponents(string: text) else {
            throw PostgresLocation.usage("--db \(PostgresLocation.redacted(text)): not a PostgreSQL URL; write postgresql://USER@HOST[:PORT]/DB")
        }
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        user = url.user.flatMap { $0.isEmpty ? nil : $0 } ?? env("PGUSER") ?? PostgresLocation.systemUser()
        host = url.host.flatMap { $0.isEmpty ? nil : $0 } ?? env("PGHOST") ?? "localhost"
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasPrefix("/") {
            throw PostgresLocation.usage("--db \(PostgresLocation.redacted(text)): a Unix socket is not supported; name a host (e.g. 127.0.0.1)")
        }
        if let p = url.port {
            port = p
        } else if let p = env("PGPORT") {
            guard let n = Int(p), (1...65535).contains(n) else { throw PostgresLocation.usage("PGPORT \(p): not a port number") }
            port = n
        } else {
            port = 5432
        }
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        database = path.isEmpty ? (env("PGDATABASE") ?? user) : path
        sslMode = .prefer
        connectTimeout = 10
        for item in url.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw PostgresLocation.usage("--db: sslmode=\(value) is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                sslRootCert = value
            case "connect_timeout":
                guard let n = Int(value), n > 0 else { throw PostgresLocation.usage("--db: connect_timeout=\(value) is not a number of seconds") }
                connectTimeout = n
            case "application_name":
                break
            default:
                throw PostgresLocation.usage("--db: unknown parameter \(item.name); known: sslmode, sslrootcert, connect_timeout, application_name")
            }
        }
        if url.query == nil, let mode = env("PGSSLMODE") {
            guard let m = SSLMode(rawValue: mode) else { throw PostgresLocation.usage("PGSSLMODE \(mode) is not an sslmode") }
            sslMode = m
        }
        password = url.password ?? env("PGPASSWORD")
            ?? PostgresLocation.passwordFromFile(env("PGPASSFILE") ?? (env("HOME").map { $0 + "/.pgpass" }),
                                                 host: host, port: port, database: database, user: user)
    }

    /// The URL without its password (and without any query but sslmode).
    package var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(user)@\(h):\(port)/\(database)"
    }

    /// `text` with any password between `user:` and `@` replaced, for messages about a URL that did not parse.
    package static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return text }
        let rest = text[scheme.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return text }
        let credentials = rest[..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    static func usage(_ message: String) -> ReadModelsServiceError {
        ReadModelsServiceError(message: message, exitCode: 64)
    }

    static func systemUser() -> String {
        ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
    }

    /// The password for the first matching line of a libpq password file
    /// (`host:port:database:user:password`, `*` matching anything, `\:` and
    /// `\\` escaped). As libpq does, a file that others may read is ignored.
    static func passwordFromFile(_ path: String?, host: String, port: Int, database: String, user: String) -> String? {
        guard let path, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let mode = attributes[.posixPermissions] as? Int, mode & 0o077 == 0,
              let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = [""]
            var escaped = false
            for c in line {
                if escaped {
                    fields[fields.count - 1].append(c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == ":" && fields.count < 5 {
                    fields.append("")
                } else {
                    fields[fields.count - 1].append(c)
                }
            }
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 || ($0 == "localhost" && $1 == "127.0.0.1") }) {
                return fields[4]
            }
        }
        return nil
    }
}

/// A problem with the PostgreSQL server or the way to it: one line, with its
/// remedy, and the exit code of docs/cli.md (64 usage, 69 unavailable, 77
/// permission denied, 1 read models that do not match the ledger).
package struct ReadModelsServiceError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var exitCode: Int32
    package var description: String { message }
}
