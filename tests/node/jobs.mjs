// The job class Node Sidequest enqueues in the tests; Sidequest records this file as the job's script.

import { Job } from "sidequest";

export class SendMail extends Job {
  async run(to) {
    return { sent: to };
  }
}
