/** The part of m3u8-parser's (untyped) API the tests use. */
declare module 'm3u8-parser' {
  export interface ParsedSegment {
    uri: string;
    duration: number;
    discontinuity?: boolean;
    timeline: number;
    dateTimeString?: string;
    programDateTime?: number;
    parts?: ParsedPart[];
    /** EXT-X-MAP in effect for this segment. */
    map?: { uri: string };
  }
  export interface ParsedPart {
    uri: string;
    duration: number;
    independent?: boolean;
  }
  export interface ParsedVariant {
    uri: string;
    attributes: Record<string, unknown> & { BANDWIDTH?: number; 'AVERAGE-BANDWIDTH'?: string | number; CODECS?: string };
  }
  export interface ParsedManifest {
    version?: number;
    targetDuration?: number;
    mediaSequence?: number;
    discontinuitySequence?: number;
    playlistType?: string;
    endList?: boolean;
    segments: ParsedSegment[];
    playlists?: ParsedVariant[];
    independentSegments?: boolean;
    serverControl?: { canBlockReload?: boolean; canSkipUntil?: number; holdBack?: number; partHoldBack?: number };
    partInf?: { partTarget?: number };
    skip?: { skippedSegments?: number };
    renditionReports?: { uri: string; lastMsn?: number; lastPart?: number }[];
    /** The segment being made (LL-HLS): its parts and the preload hints after them. */
    preloadSegment?: { parts?: ParsedPart[]; preloadHints?: { type: string; uri: string }[]; discontinuity?: boolean };
  }
  export class Parser {
    manifest: ParsedManifest;
    push(chunk: string): void;
    end(): void;
    on(event: 'warn' | 'info', listener: (event: { message: string }) => void): void;
  }
}
