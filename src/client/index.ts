/**
 * src/client: the raftmq client library — Client, Admin, Producer, Consumer and the one
 * error class. Imports base and protocol only, never the broker.
 */
export { Client } from './client.js'
export type { ClientEvents, ClientLogger, ClientOptions } from './client.js'
export type { ConnectionEvent } from './node-connections.js'
export { Admin } from './admin.js'
export type { CreateTopicOptions, CreateTopicResult } from './admin.js'
export { Producer, murmur2 } from './producer.js'
export type { Message, SendResult, BatchItemResult, ProducerOptions, Bytes } from './producer.js'
export { Consumer } from './consumer.js'
export type { ConsumedMessage, FetchResult, FetchOptions, SubscribeOptions, ConsumerOptions } from './consumer.js'
export { RaftmqError } from './errors.js'
