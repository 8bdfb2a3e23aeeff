/**
 * CRC_32 of MPEG-2 PSI sections (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7,
 * initial value 0xFFFFFFFF, MSB first, no final XOR. A section whose CRC field is included
 * in the computation yields 0.
 */

const CRC_TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    table[byte] = crc >>> 0;
  }
  return table;
}

export function mpegCrc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffffffff;
  for (let index = start; index < end; index++) {
    crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[index]) & 0xff];
  }
  return crc >>> 0;
}
