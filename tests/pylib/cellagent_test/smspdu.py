"""SMS PDU codec for the lab (3GPP TS 23.040 / 23.038), Python stdlib only.

Decodes the SMS-SUBMIT PDUs ModemManager hands the emulated modem, and
encodes the SMS-DELIVER and SMS-STATUS-REPORT PDUs the modem hands back:
GSM 7-bit with the extension table, UCS-2 (UTF-16, so emoji survive),
concatenation with a User Data Header, SMSC timestamps.
"""

import datetime
import itertools

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM7_BASIC) == 128
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
            0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}
_BASIC_INDEX = {ch: i for i, ch in enumerate(GSM7_BASIC) if ch != "\x1b"}
_EXT_INDEX = {ch: code for code, ch in GSM7_EXT.items()}

DCS_GSM7, DCS_8BIT, DCS_UCS2 = 0x00, 0x04, 0x08


class PduError(ValueError):
    """A PDU that cannot be decoded."""


# ---------------------------------------------------------------- alphabets

def gsm7_encodable(text):
    """True if every character of text is in the GSM 7-bit alphabet."""
    return all(ch in _BASIC_INDEX or ch in _EXT_INDEX for ch in text)


def gsm7_septets(text):
    """Text to a list of GSM 7-bit septet values (extension chars take two)."""
    out = []
    for ch in text:
        if ch in _BASIC_INDEX:
            out.append(_BASIC_INDEX[ch])
        elif ch in _EXT_INDEX:
            out.extend((0x1B, _EXT_INDEX[ch]))
        else:
            raise ValueError("character %r is not in the GSM 7-bit alphabet" % ch)
    return out


def gsm7_text(septets):
    """A list of septet values back to text."""
    out, escape = [], False
    for s in septets:
        if escape:
            out.append(GSM7_EXT.get(s, GSM7_BASIC[s] if s != 0x1B else " "))
            escape = False
        elif s == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[s])
    return "".join(out)


def pack_septets(septets, header=b""):
    """Pack septets LSB-first after an optional header, with fill bits.

    Returns (user_data_bytes, udl) where udl counts septets, header included.
    """
    bits = []
    for byte in header:
        bits.extend((byte >> i) & 1 for i in range(8))
    while len(bits) % 7:
        bits.append(0)
    for s in septets:
        bits.extend((s >> i) & 1 for i in range(7))
    udl = len(bits) // 7
    while len(bits) % 8:
        bits.append(0)
    data = bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))
    return data, udl


def unpack_septets(data, udl, header_len=0):
    """Unpack udl septets (header included) from data; skip header_len octets."""
    bits = []
    for byte in data:
        bits.extend((byte >> i) & 1 for i in range(8))
    skip = (header_len * 8 + 6) // 7 if header_len else 0
    out = []
    for n in range(skip, udl):
        chunk = bits[n * 7:n * 7 + 7]
        if len(chunk) < 7:
            break
        out.append(sum(b << i for i, b in enumerate(chunk)))
    return out


def ucs2_bytes(text):
    """Text to UCS-2 (UTF-16BE, surrogate pairs for characters beyond the BMP)."""
    return text.encode("utf-16-be")


def ucs2_text(data):
    """UTF-16BE bytes to text (unpaired surrogates are replaced)."""
    return data.decode("utf-16-be", errors="replace")


# ---------------------------------------------------------------- addresses

def encode_address(number, length_in_octets=False):
    """Encode a phone number as (length, TOA, BCD digits) bytes.

    Alphanumeric senders (letters in number) use TOA 0xD0 with packed GSM 7-bit.
    length_in_octets is used for the SMSC address, which counts octets.
    """
    if number and not number.lstrip("+").isdigit():
        data, udl = pack_septets(gsm7_septets(number))
        return bytes([len(data) * 2, 0xD0]) + data
    toa = 0x91 if number.startswith("+") else 0x81
    digits = number.lstrip("+")
    padded = digits + ("F" if len(digits) % 2 else "")
    bcd = bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))
    if length_in_octets:
        return bytes([len(bcd) + 1, toa]) + bcd
    return bytes([len(digits), toa]) + bcd


def decode_bcd(data):
    """Nibble-swapped BCD to a digit string (stops at the F filler)."""
    out = []
    for byte in data:
        for nib in (byte & 0x0F, byte >> 4):
            if nib == 0x0F:
                return "".join(out)
            out.append("0123456789*#abc"[nib])
    return "".join(out)


def decode_address(pdu, pos):
    """Decode a TP address (length in digits) at pos; return (number, new_pos)."""
    ndigits, toa = pdu[pos], pdu[pos + 1]
    nbytes = (ndigits + 1) // 2
    raw = pdu[pos + 2:pos + 2 + nbytes]
    if (toa & 0x70) == 0x50:
        number = gsm7_text(unpack_septets(raw, ndigits * 4 // 7))
    else:
        number = decode_bcd(raw)
        if (toa & 0x70) == 0x10:
            number = "+" + number
    return number, pos + 2 + nbytes


# ---------------------------------------------------------------- timestamps

def encode_timestamp(ts):
    """An aware datetime to the 7-octet SCTS (semi-octets, zone in quarters)."""
    offset = ts.utcoffset() or datetime.timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    fields = [ts.year % 100, ts.month, ts.day, ts.hour, ts.minute, ts.second]
    out = bytes(((v % 10) << 4) | (v // 10) for v in fields)
    q = abs(quarters)
    tz = ((q % 10) << 4) | (q // 10)
    if quarters < 0:
        tz |= 0x08
    return out + bytes([tz])


def decode_timestamp(data):
    """The 7-octet SCTS back to an aware datetime."""
    def semi(b):
        return (b & 0x0F) * 10 + (b >> 4)
    tzb = data[6]
    quarters = (tzb & 0x07) * 10 + (tzb >> 4)
    if tzb & 0x08:
        quarters = -quarters
    tz = datetime.timezone(datetime.timedelta(minutes=15 * quarters))
    return datetime.datetime(2000 + semi(data[0]), semi(data[1]), semi(data[2]),
                             semi(data[3]), semi(data[4]), semi(data[5]), tzinfo=tz)


def parse_timestamp(value):
    """None, an aware datetime or an ISO 8601 string (Z allowed) to a datetime."""
    if value is None:
        return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------- user data

def _parse_udh(header):
    """Concatenation info from a UDH (without its length octet), or None."""
    i = 0
    while i + 1 < len(header):
        iei, iel = header[i], header[i + 1]
        val = header[i + 2:i + 2 + iel]
        if iei == 0x00 and iel == 3:
            return {"ref": val[0], "total": val[1], "seq": val[2]}
        if iei == 0x08 and iel == 4:
            return {"ref": (val[0] << 8) | val[1], "total": val[2], "seq": val[3]}
        i += 2 + iel
    return None


def alphabet_of(dcs):
    """GSM7, 8BIT or UCS2 from a TP-DCS octet."""
    group = dcs >> 4
    if group in (0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7):
        return {0: "GSM7", 1: "8BIT", 2: "UCS2", 3: "GSM7"}[(dcs >> 2) & 3]
    if group == 0xF:
        return "8BIT" if dcs & 0x04 else "GSM7"
    if group == 0xE:
        return "UCS2"
    return "GSM7"


def decode_user_data(pdu, pos, udhi, dcs):
    """Decode TP-UDL + TP-UD at pos; return (text, concat-or-None, raw bytes)."""
    udl = pdu[pos]
    data = pdu[pos + 1:]
    concat, header_len = None, 0
    if udhi:
        header_len = data[0] + 1
        concat = _parse_udh(data[1:header_len])
    alphabet = alphabet_of(dcs)
    if alphabet == "GSM7":
        text = gsm7_text(unpack_septets(data, udl, header_len))
        return text, concat, data
    body = data[header_len:udl]
    if alphabet == "UCS2":
        return ucs2_text(body), concat, data
    return body.hex(), concat, data


# ---------------------------------------------------------------- SMS-SUBMIT

def decode_submit(hexpdu, with_smsc=True):
    """Decode an SMS-SUBMIT PDU (hex, as sent after AT+CMGS) into a dict.

    Keys: number, text, alphabet, dcs, mr, srr (status report requested),
    validity (raw octet or None), concat ({ref,total,seq} or None), smsc.
    """
    try:
        pdu = bytes.fromhex(hexpdu.strip())
    except ValueError as exc:
        raise PduError("not hex: %s" % exc) from None
    try:
        pos, smsc = 0, ""
        if with_smsc:
            sca_len = pdu[0]
            if sca_len:
                smsc = decode_bcd(pdu[2:1 + sca_len])
                if pdu[1] & 0x70 == 0x10:
                    smsc = "+" + smsc
            pos = 1 + sca_len
        first = pdu[pos]
        if first & 0x03 != 0x01:
            raise PduError("not an SMS-SUBMIT (first octet %02X)" % first)
        mr = pdu[pos + 1]
        number, pos = decode_address(pdu, pos + 2)
        pid, dcs = pdu[pos], pdu[pos + 1]
        pos += 2
        vpf = (first >> 3) & 3
        validity = None
        if vpf == 2:
            validity = pdu[pos]
            pos += 1
        elif vpf in (1, 3):
            validity = pdu[pos:pos + 7].hex()
            pos += 7
        text, concat, _ = decode_user_data(pdu, pos, bool(first & 0x40), dcs)
    except IndexError:
        raise PduError("truncated PDU") from None
    return {"number": number, "text": text, "alphabet": alphabet_of(dcs), "dcs": dcs,
            "pid": pid, "mr": mr, "srr": bool(first & 0x20), "validity": validity,
            "concat": concat, "smsc": smsc}


# ---------------------------------------------------------------- SMS-DELIVER

def split_text(text, encoding="auto"):
    """Split text into message parts; return (alphabet, [part texts]).

    GSM7: 160 septets alone or 153 per part; UCS-2: 70 or 67 UTF-16 units.
    Never splits an escape sequence or a surrogate pair.
    """
    if encoding == "auto":
        encoding = "GSM7" if gsm7_encodable(text) else "UCS2"
    encoding = encoding.upper()
    if encoding == "GSM7":
        cost = [2 if ch in _EXT_INDEX else 1 for ch in text]
        single, multi = 160, 153
    elif encoding == "UCS2":
        cost = [len(ch.encode("utf-16-be")) // 2 for ch in text]
        single, multi = 70, 67
    else:
        raise ValueError("unknown encoding %r" % encoding)
    if sum(cost) <= single:
        return encoding, [text]
    parts, cur, used = [], [], 0
    for ch, c in zip(text, cost):
        if used + c > multi:
            parts.append("".join(cur))
            cur, used = [], 0
        cur.append(ch)
        used += c
    parts.append("".join(cur))
    return encoding, parts


def encode_deliver(sender, text, smsc="+254722500029", timestamp=None, encoding="auto",
                   concat=None, more=False, status_report=False):
    """Build one SMS-DELIVER PDU (hex, SMSC address included).

    concat is None or (ref, total, seq); ref > 255 uses the 16-bit IE.
    Returns (hexpdu, tpdu_length) as +CMGR/+CMGL need.
    """
    alphabet = "GSM7" if encoding == "auto" and gsm7_encodable(text) else (
        "UCS2" if encoding == "auto" else encoding.upper())
    header = b""
    if concat:
        ref, total, seq = concat
        if ref > 255:
            ie = bytes([0x08, 4, ref >> 8, ref & 0xFF, total, seq])
        else:
            ie = bytes([0x00, 3, ref, total, seq])
        header = bytes([len(ie)]) + ie
    first = 0x00 | (0x00 if more else 0x04) | (0x40 if header else 0) | (0x20 if status_report else 0)
    sca = encode_address(smsc, length_in_octets=True) if smsc else b"\x00"
    tpdu = bytes([first]) + encode_address(sender)
    if alphabet == "GSM7":
        ud, udl = pack_septets(gsm7_septets(text), header)
        dcs = DCS_GSM7
    else:
        ud = header + ucs2_bytes(text)
        udl = len(ud)
        dcs = DCS_UCS2
    tpdu += bytes([0x00, dcs]) + encode_timestamp(parse_timestamp(timestamp))
    tpdu += bytes([udl]) + ud
    return (sca + tpdu).hex().upper(), len(tpdu)


# Concatenation references for multipart messages that name none: one after the other
# (1..255, then again), as a handset numbers what it sends. ModemManager (1.20 and 1.24)
# joins parts by this reference alone, whoever sent them: a new message whose reference
# matches one it still holds loses its parts ("Already took N parts"). Random references
# made that happen in about one lab run in a hundred.
_next_ref = itertools.cycle(range(1, 256))


def encode_deliver_parts(sender, text, smsc="+254722500029", timestamp=None,
                         encoding="auto", ref=None):
    """All SMS-DELIVER PDUs for text, split and concatenated as needed.

    ref: the concatenation reference; None takes the next one (1..255, in turn).
    Returns a list of (hexpdu, tpdu_length).
    """
    alphabet, parts = split_text(text, encoding)
    if len(parts) == 1:
        return [encode_deliver(sender, text, smsc, timestamp, alphabet)]
    if ref is None:
        ref = next(_next_ref)
    return [encode_deliver(sender, part, smsc, timestamp, alphabet,
                           concat=(ref, len(parts), i + 1), more=i + 1 < len(parts))
            for i, part in enumerate(parts)]


def decode_deliver(hexpdu):
    """Decode an SMS-DELIVER PDU (hex, SMSC included) into a dict (for tests)."""
    pdu = bytes.fromhex(hexpdu)
    sca_len = pdu[0]
    smsc = decode_bcd(pdu[2:1 + sca_len]) if sca_len else ""
    if sca_len and pdu[1] & 0x70 == 0x10:
        smsc = "+" + smsc
    pos = 1 + sca_len
    first = pdu[pos]
    sender, pos = decode_address(pdu, pos + 1)
    dcs = pdu[pos + 1]
    ts = decode_timestamp(pdu[pos + 2:pos + 9])
    text, concat, _ = decode_user_data(pdu, pos + 9, bool(first & 0x40), dcs)
    return {"sender": sender, "smsc": smsc, "text": text, "timestamp": ts.isoformat(),
            "concat": concat, "alphabet": alphabet_of(dcs)}


# ---------------------------------------------------------------- STATUS-REPORT

def encode_status_report(mr, recipient, submitted=None, discharged=None, status=0,
                         smsc="+254722500029"):
    """Build an SMS-STATUS-REPORT PDU (hex, SMSC included); status 0 = delivered.

    Returns (hexpdu, tpdu_length).
    """
    sca = encode_address(smsc, length_in_octets=True) if smsc else b"\x00"
    tpdu = bytes([0x06, mr & 0xFF]) + encode_address(recipient)
    tpdu += encode_timestamp(parse_timestamp(submitted))
    tpdu += encode_timestamp(parse_timestamp(discharged))
    tpdu += bytes([status & 0xFF])
    return (sca + tpdu).hex().upper(), len(tpdu)
