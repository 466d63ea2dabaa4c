/**
 * syncookie-agent: stateless SYN-flood protection with custom SYN cookies,
 * answered and checked by an eBPF TC program (Linux 6.9+).
 */
export { SynCookieAgent, type SynCookieAgentOptions, type SynCookieStats, type AttachMode, type AttachOptions, type Destinations, type SynCookieAgentEvents, type InterfaceGoneEvent, type InterfaceRenamedEvent } from './agent';
export {
  BpfError,
  VerifierError,
  NotSupportedError,
  PermissionError,
  InterfaceNotFoundError,
  ConfigurationError,
  ClosedError,
} from './errors';
export { STAT_NAMES, type StatName } from './layout';
export {
  encodeCookie,
  decodeCookie,
  cookieSlot,
  synAckTsval,
  MSS_TABLE_V4,
  MSS_TABLE_V6,
  type CookieTuple,
  type CookieOptions,
} from './cookie';
export { prometheusText } from './metrics';
