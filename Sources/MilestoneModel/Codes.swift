import CanonicalJSON

/// ISO 4217 active currency codes and ISO 3166-1 alpha-2 country codes
/// (officially assigned), as the event forms of docs/events.md require.
enum Codes {
    static let currencies: Set<String> = Set("""
        AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD \
        CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP \
        GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW \
        KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN \
        NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL \
        SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES \
        VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
        """.split(separator: " ").map(String.init))

    static let countries: Set<String> = Set("""
        AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW \
        BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
        FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN \
        IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
        MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF \
        PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
        SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE \
        YT ZA ZM ZW
        """.split(separator: " ").map(String.init))

    /// Membership as bit sets over the letters (26³ and 26² bits), so a code
    /// in parsed text is checked without making a String.
    static let currencyBits = StaticTable(bits(currencies, letters: 3))
    static let countryBits = StaticTable(bits(countries, letters: 2))

    static func bits(_ codes: Set<String>, letters: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: (Int(pow26(letters)) + 63) / 64)
        for c in codes {
            let k = Array(c.utf8).reduce(0) { $0 * 26 + Int($1 - 0x41) }
            out[k >> 6] |= 1 << UInt64(k & 63)
        }
        return out
    }

    static func pow26(_ n: Int) -> Int { (0..<n).reduce(1) { a, _ in a * 26 } }

    static func contains(_ u: UnsafeBufferPointer<UInt8>, letters: Int, _ set: StaticTable<UInt64>) -> Bool {
        guard u.count == letters else { return false }
        var k = 0
        for c in u {
            guard c >= 0x41, c <= 0x5A else { return false }
            k = k * 26 + Int(c - 0x41)
        }
        return set[k >> 6] & (1 << UInt64(k & 63)) != 0
    }

    static func isCurrency(_ u: UnsafeBufferPointer<UInt8>) -> Bool { contains(u, letters: 3, currencyBits) }
    static func isCountry(_ u: UnsafeBufferPointer<UInt8>) -> Bool { contains(u, letters: 2, countryBits) }
}

/// An amount as people type it: `500B`, `1.2M`, `$761M`, `€2.5B`, `761000000`
/// (K, M, B, T: thousand, million, billion, trillion). Whole currency units
/// only: `1.2345K` is refused rather than rounded.
package enum AmountText {
    /// Currency symbols that name one currency.
    package static let symbols: [(String, String)] = [("US$", "USD"), ("NT$", "TWD"), ("CN¥", "CNY"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"), ("₩", "KRW"), ("₹", "INR")]

    /// The value in whole units and the currency its symbol names, if any.
    package static func parse(_ text: String) -> (value: Int64, currency: String?)? {
        var s = Substring(text.filter { $0 != "," && $0 != "_" })
        var currency: String?
        for (symbol, code) in symbols where s.hasPrefix(symbol) {
            currency = code
            s = s.dropFirst(symbol.count)
            break
        }
        let scales: [Character: Int64] = ["K": 1_000, "M": 1_000_000, "B": 1_000_000_000, "T": 1_000_000_000_000]
        var scale: Int64 = 1
        // The scale letter, read as ASCII (some letters upper-case to two).
        if let last = s.last, let a = last.asciiValue, let k = scales[Character(Unicode.Scalar(a & ~0x20))] {
            scale = k
            s = s.dropLast()
        }
        let pieces = s.split(separator: ".", omittingEmptySubsequences: false)
        guard !s.isEmpty, pieces.count <= 2, pieces.allSatisfy({ p in p.allSatisfy { $0.isASCII && $0.isNumber } }),
              !pieces[0].isEmpty, let whole = Int64(pieces[0]) else { return nil }
        let fraction = pieces.count == 2 ? pieces[1] : ""
        guard pieces.count == 1 || !fraction.isEmpty else { return nil }  // "5." is not a number
        guard fraction.count <= 18, let f = fraction.isEmpty ? 0 : Int64(fraction) else { return nil }
        var divisor: Int64 = 1
        for _ in 0..<fraction.count { divisor *= 10 }
        // value = whole × scale + f × scale / divisor, exactly.
        let (a, o1) = whole.multipliedReportingOverflow(by: scale)
        let (b, o2) = f.multipliedReportingOverflow(by: scale)
        guard !o1, !o2, b % divisor == 0 else { return nil }
        let (v, o3) = a.addingReportingOverflow(b / divisor)
        guard !o3, v <= (1 << 53) - 1 else { return nil }
        return (v, currency)
    }
}
