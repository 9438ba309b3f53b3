/** What the object store's modules share: the client, the tip cache and the strategy name. */
import type { ObjectClient } from "./objects.js";
import type { Tips } from "./tip.js";

/** The object store's shared parts, handed to every module. */
export interface ObjectContext {
  client: ObjectClient;
  tips: Tips;
  /** The store's strategy (`s3`, `azure`), for errors. */
  strategy: string;
}
