/**
 * The attribute-list grammar of RFC 8216 §4.2: `NAME=value,NAME="quoted value",…`.
 * Reading keeps whether each value was quoted, so a tag parser can insist on the type the
 * spec gives the attribute; unknown attributes are kept and left for the tag to ignore
 * (§6.3.1). A name that appears twice makes the list invalid (§4.2). Linear in the text.
 */
import { PlaylistParseError } from './playlist-parse-error.js';
import { readDecimalFloat, readDecimalInteger, readYesNo } from './values.js';

export interface AttributeValue {
  text: string;
  quoted: boolean;
}

export type AttributeList = ReadonlyMap<string, AttributeValue>;

const ATTRIBUTE_NAME = /^[A-Z0-9-]+$/;

export function parseAttributeList(text: string, tag: string): AttributeList {
  const attributes = new Map<string, AttributeValue>();
  let at = 0;
  while (at < text.length) {
    const equals = text.indexOf('=', at);
    if (equals === -1) throw new PlaylistParseError(`${tag}: attribute without a value in "${text}"`);
    const name = text.slice(at, equals);
    if (!ATTRIBUTE_NAME.test(name)) throw new PlaylistParseError(`${tag}: invalid attribute name "${name}"`);
    if (attributes.has(name)) throw new PlaylistParseError(`${tag}: attribute ${name} appears twice`);
    let value: AttributeValue;
    let end: number;
    if (text[equals + 1] === '"') {
      const closing = text.indexOf('"', equals + 2);
      if (closing === -1) throw new PlaylistParseError(`${tag}: unterminated quoted value of ${name}`);
      value = { text: text.slice(equals + 2, closing), quoted: true };
      end = closing + 1;
      if (end < text.length && text[end] !== ',') throw new PlaylistParseError(`${tag}: expected a comma after ${name}`);
    } else {
      const comma = text.indexOf(',', equals + 1);
      end = comma === -1 ? text.length : comma;
      value = { text: text.slice(equals + 1, end), quoted: false };
      if (value.text === '' || /[\s"]/.test(value.text)) throw new PlaylistParseError(`${tag}: invalid value of ${name}`);
    }
    attributes.set(name, value);
    // A trailing comma would start an attribute with no name.
    if (end < text.length && end === text.length - 1) throw new PlaylistParseError(`${tag}: trailing comma`);
    at = end + 1;
  }
  return attributes;
}

/** Writes `NAME=value` pairs in order; values are already formatted (quoted where needed). */
export function formatAttributeList(attributes: readonly (readonly [string, string])[]): string {
  return attributes.map(([name, value]) => `${name}=${value}`).join(',');
}

/** Readers of typed attributes: `undefined` when absent, PlaylistParseError when of the wrong type. */
export class AttributeReader {
  constructor(
    private readonly attributes: AttributeList,
    private readonly tag: string,
  ) {}

  static parse(text: string, tag: string): AttributeReader {
    return new AttributeReader(parseAttributeList(text, tag), tag);
  }

  quotedString(name: string): string | undefined {
    return this.typed(name, true)?.text;
  }

  enumerated(name: string): string | undefined {
    return this.typed(name, false)?.text;
  }

  decimalInteger(name: string): number | undefined {
    const value = this.typed(name, false);
    return value && readDecimalInteger(value.text, this.where(name));
  }

  decimalFloat(name: string): number | undefined {
    const value = this.typed(name, false);
    return value && readDecimalFloat(value.text, this.where(name));
  }

  yesNo(name: string): boolean | undefined {
    const value = this.typed(name, false);
    return value && readYesNo(value.text, this.where(name));
  }

  /** The value, or PlaylistParseError naming the missing attribute. */
  required<T>(name: string, read: (name: string) => T | undefined): T {
    const value = read.call(this, name);
    if (value === undefined) throw new PlaylistParseError(`${this.tag}: ${name} is required`);
    return value;
  }

  private typed(name: string, quoted: boolean): AttributeValue | undefined {
    const value = this.attributes.get(name);
    if (value && value.quoted !== quoted) {
      throw new PlaylistParseError(`${this.where(name)}: expected ${quoted ? 'a quoted string' : 'an unquoted value'}`);
    }
    return value;
  }

  private where(name: string): string {
    return `${this.tag} ${name}`;
  }
}
