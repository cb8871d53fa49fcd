// comlink ships its Node adapter as an .mjs file without a matching .d.mts; this is its published signature.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink'
  export interface NodeEndpoint {
    postMessage(message: unknown, transfer?: unknown[]): void
    on(type: string, listener: (...args: unknown[]) => void, options?: object): void
    off(type: string, listener: (...args: unknown[]) => void, options?: object): void
    start?: () => void
  }
  export default function nodeEndpoint(nep: NodeEndpoint): Endpoint
}
