'use strict';
// Proto3 JSON mapping for protobufjs messages (reflection based), plus a wire
// walker that reports fields the schema does not know.
//
// protobufjs' own toObject() does not apply the proto3 JSON mapping of the
// well-known types (Duration -> "600s", Timestamp -> RFC 3339, ...), so the
// fake does it here. Field names are the lowerCamelCase names protobufjs
// produces with keepCase=false, which are the proto3 JSON names.

const protobuf = require('protobufjs');

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function isLong(v) {
  return v !== null && typeof v === 'object' && typeof v.low === 'number' && typeof v.high === 'number';
}

function longToString(v, unsigned) {
  if (isLong(v)) {
    const L = protobuf.util.Long;
    if (L) return L.fromBits(v.low, v.high, unsigned).toString();
  }
  return String(v);
}

function toBase64(bytes) {
  return Buffer.from(bytes.buffer ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes).toString('base64');
}

function fracDigits(nanos) {
  if (!nanos) return '';
  if (nanos % 1000000 === 0) return '.' + String(nanos / 1000000).padStart(3, '0');
  if (nanos % 1000 === 0) return '.' + String(nanos / 1000).padStart(6, '0');
  return '.' + String(nanos).padStart(9, '0');
}

function num(v) {
  if (isLong(v)) return Number(longToString(v, false));
  return Number(v || 0);
}

function timestampJson(m) {
  const secs = num(m.seconds);
  const nanos = num(m.nanos);
  const iso = new Date(secs * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return iso.slice(0, 19) + fracDigits(nanos) + 'Z';
}

function durationJson(m) {
  let secs = num(m.seconds);
  let nanos = num(m.nanos);
  let sign = '';
  if (secs < 0 || nanos < 0) {
    sign = '-';
    secs = Math.abs(secs);
    nanos = Math.abs(nanos);
  }
  return sign + String(secs) + fracDigits(nanos) + 's';
}

function snakeToCamel(s) {
  return s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function isDefaultScalar(field, v) {
  if (v === undefined || v === null) return true;
  if (field.resolvedType instanceof protobuf.Enum) return v === 0 || v === field.resolvedType.valuesById[0];
  switch (field.type) {
    case 'string': return v === '';
    case 'bytes': return v.length === 0;
    case 'bool': return v === false;
    default:
      if (isLong(v)) return v.low === 0 && v.high === 0;
      return Number(v) === 0;
  }
}

function scalarJson(field, v) {
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = field.resolvedType.valuesById[v];
    return name !== undefined ? name : v;
  }
  if (LONG_TYPES.has(field.type)) return longToString(v, field.type === 'uint64' || field.type === 'fixed64');
  switch (field.type) {
    case 'bytes': return toBase64(v);
    case 'double':
    case 'float':
      if (Number.isNaN(v)) return 'NaN';
      if (v === Infinity) return 'Infinity';
      if (v === -Infinity) return '-Infinity';
      return v;
    default: return v;
  }
}

function scalarDefault(field) {
  if (field.resolvedType instanceof protobuf.Enum) return field.resolvedType.valuesById[0] || 0;
  if (LONG_TYPES.has(field.type)) return '0';
  switch (field.type) {
    case 'string': return '';
    case 'bytes': return '';
    case 'bool': return false;
    default: return 0;
  }
}

function valueJson(field, v, opts) {
  if (field.resolvedType instanceof protobuf.Type) return messageJson(field.resolvedType, v, opts);
  return scalarJson(field, v);
}

function structValueJson(m) {
  if (!m) return null;
  if (m.kind === 'nullValue' || Object.prototype.hasOwnProperty.call(m, 'nullValue')) return null;
  if (Object.prototype.hasOwnProperty.call(m, 'numberValue')) return m.numberValue;
  if (Object.prototype.hasOwnProperty.call(m, 'stringValue')) return m.stringValue;
  if (Object.prototype.hasOwnProperty.call(m, 'boolValue')) return m.boolValue;
  if (Object.prototype.hasOwnProperty.call(m, 'structValue')) return structJson(m.structValue);
  if (Object.prototype.hasOwnProperty.call(m, 'listValue')) return (m.listValue.values || []).map(structValueJson);
  return null;
}

function structJson(m) {
  const out = {};
  for (const k of Object.keys(m.fields || {})) out[k] = structValueJson(m.fields[k]);
  return out;
}

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value',
  'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue']);

function messageJson(type, m, opts) {
  opts = opts || {};
  const fn = type.fullName;
  if (fn.startsWith('.google.protobuf.')) {
    const short = fn.slice('.google.protobuf.'.length);
    if (short === 'Timestamp') return timestampJson(m);
    if (short === 'Duration') return durationJson(m);
    if (short === 'FieldMask') return (m.paths || []).map(snakeToCamel).join(',');
    if (short === 'Empty') return {};
    if (short === 'Struct') return structJson(m);
    if (short === 'Value') return structValueJson(m);
    if (short === 'ListValue') return (m.values || []).map(structValueJson);
    if (WRAPPERS.has(short)) return scalarJson(type.fields.value, m.value === undefined ? scalarDefault(type.fields.value) : m.value);
    if (short === 'Any') return anyJson(type, m, opts);
  }
  const out = {};
  for (const field of type.fieldsArray) {
    const name = field.name;
    const has = Object.prototype.hasOwnProperty.call(m, name);
    const v = m[name];
    if (field.map) {
      const keys = v ? Object.keys(v) : [];
      if (!keys.length) {
        if (opts.defaults) out[name] = {};
        continue;
      }
      const o = {};
      for (const k of keys) o[k] = valueJson(field, v[k], opts);
      out[name] = o;
    } else if (field.repeated) {
      if (!v || !v.length) {
        if (opts.defaults) out[name] = [];
        continue;
      }
      out[name] = Array.from(v, (x) => valueJson(field, x, opts));
    } else if (field.resolvedType instanceof protobuf.Type || field.partOf) {
      // Fields with presence: messages, oneof members, proto3 `optional`.
      if (!has || v === null || v === undefined) continue;
      out[name] = valueJson(field, v, opts);
    } else {
      if (!has || isDefaultScalar(field, v)) {
        if (opts.defaults) out[name] = scalarDefault(field);
        continue;
      }
      out[name] = scalarJson(field, v);
    }
  }
  return out;
}

const SPECIAL_WKT = new Set(['Timestamp', 'Duration', 'FieldMask', 'Struct', 'Value', 'ListValue', 'Any', 'Empty']);

function anyJson(type, m, opts) {
  // protobufjs' built-in Any keeps the field name type_url even with keepCase=false
  const typeUrl = m.type_url !== undefined ? m.type_url : m.typeUrl || '';
  const value = m.value || new Uint8Array(0);
  const out = { '@type': typeUrl };
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  let inner = null;
  try {
    inner = name ? type.root.lookupType(name) : null;
  } catch (e) {
    inner = null;
  }
  if (!inner) {
    out.value = toBase64(value);
    return out;
  }
  const decoded = inner.decode(value);
  const j = messageJson(inner, decoded, opts);
  const wkt = inner.fullName.startsWith('.google.protobuf.') ? inner.fullName.slice('.google.protobuf.'.length) : null;
  if (wkt && (SPECIAL_WKT.has(wkt) || WRAPPERS.has(wkt))) {
    out.value = j;
    return out;
  }
  return Object.assign(out, j);
}

// ---------------------------------------------------------------------------
// Wire walker: list fields whose number the schema does not know, or whose
// wire type does not match the declared type. protobufjs silently skips
// unknown fields, so without this a wrong field number would go unnoticed.

function expectedWireTypes(field) {
  if (field.map) return [2];
  if (field.resolvedType instanceof protobuf.Type) return [2];
  if (field.resolvedType instanceof protobuf.Enum) return field.repeated ? [0, 2] : [0];
  let wt;
  switch (field.type) {
    case 'string': case 'bytes': return [2];
    case 'double': case 'fixed64': case 'sfixed64': wt = 1; break;
    case 'float': case 'fixed32': case 'sfixed32': wt = 5; break;
    default: wt = 0;
  }
  return field.repeated ? [wt, 2] : [wt];
}

function findUnknownFields(type, buf, pathPrefix, out, depth) {
  out = out || [];
  depth = depth || 0;
  if (depth > 64) return out;
  const r = protobuf.Reader.create(buf);
  const byId = type.fieldsById || {};
  const idx = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wt = tag & 7;
    const field = byId[id];
    const here = pathPrefix || '(root)';
    if (!field) {
      out.push(`${here}: unknown field ${id} (wire type ${wt}) in ${type.fullName.slice(1)}`);
      r.skipType(wt);
      continue;
    }
    if (!expectedWireTypes(field).includes(wt)) {
      out.push(`${here}.${field.name}: field ${id} has wire type ${wt}, ${type.fullName.slice(1)} declares ${field.map ? 'map' : field.type}`);
      r.skipType(wt);
      continue;
    }
    if (wt === 2 && (field.map || field.resolvedType instanceof protobuf.Type)) {
      const sub = r.bytes();
      const p = pathPrefix ? `${pathPrefix}.${field.name}` : field.name;
      if (field.map) {
        if (field.resolvedType instanceof protobuf.Type) {
          // map entry: key = 1, value = 2 (message)
          const er = protobuf.Reader.create(sub);
          while (er.pos < er.len) {
            const t2 = er.uint32();
            if ((t2 >>> 3) === 2 && (t2 & 7) === 2) {
              findUnknownFields(field.resolvedType, er.bytes(), `${p}[]`, out, depth + 1);
            } else {
              er.skipType(t2 & 7);
            }
          }
        }
      } else {
        findUnknownFields(field.resolvedType, sub, field.repeated ? `${p}[${idx[id] = (idx[id] === undefined ? 0 : idx[id] + 1)}]` : p, out, depth + 1);
      }
      continue;
    }
    r.skipType(wt);
  }
  return out;
}

module.exports = { messageJson, findUnknownFields, timestampJson, durationJson, snakeToCamel };
