declare module 'raw-socket' {
  import type { EventEmitter } from 'node:events';

  namespace raw {
    interface Socket extends EventEmitter {
      send(
        buffer: Buffer,
        offset: number,
        length: number,
        address: string,
        afterCallback: (error: Error | null, bytes: number) => void,
      ): Socket;
      setOption(level: number, option: number, value: number): void;
      close(): Socket;
    }
    interface SocketOptions {
      protocol?: number;
      bufferSize?: number;
    }
    const Protocol: { None: number; ICMP: number; TCP: number; UDP: number; ICMPv6: number };
    function createSocket(options?: SocketOptions): Socket;
  }
  export default raw;
}
