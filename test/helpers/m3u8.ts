/** Parses playlist text with m3u8-parser (a real player-side parser) and collects its warnings. */
import { Parser, type ParsedManifest } from 'm3u8-parser';

export function parsePlaylist(text: string): { manifest: ParsedManifest; warnings: string[] } {
  const parser = new Parser();
  const warnings: string[] = [];
  parser.on('warn', (event) => warnings.push(event.message));
  parser.push(text);
  parser.end();
  return { manifest: parser.manifest, warnings };
}
