/** The CA hierarchy as a tree (parentId links); a root under an external CA shows at the top level. */
import { listAuthorities } from '../../../clients/fleet-pki-client';
import { allPages, call, type Session } from '../api';
import { Badge, date, ErrorLine, h, useLoad } from '../ui';

interface Node {
  id: string;
  name: string;
  type: string;
  usage: string;
  status: string;
  parentId: string | null;
  subject: string;
  keySpec: string;
  keyBackend: string;
  notAfter: string | null;
}

function Branch(props: { node: Node; children: Map<string | null, Node[]> }) {
  const kids = props.children.get(props.node.id) ?? [];
  const n = props.node;
  return h(
    'li',
    { 'data-testid': 'ca-node' },
    h('div', { class: 'ca' }, h('strong', null, n.name), ' ', h(Badge, { value: n.status }), h('span', { class: 'muted' }, ` ${n.type} · ${n.usage} · ${n.keySpec} (${n.keyBackend}) · until ${date(n.notAfter)}`), h('div', { class: 'muted small' }, n.subject)),
    kids.length > 0 && h('ul', { class: 'tree' }, ...kids.map((kid) => h(Branch, { node: kid, children: props.children }))),
  );
}

export function Authorities(props: { session: Session }) {
  const { data, error } = useLoad(() => allPages((cursor) => call(listAuthorities({ client: props.session.client, query: { limit: 500, cursor } })), 20));
  if (error) return h(ErrorLine, { error });
  if (!data) return h('p', { class: 'muted' }, 'Loading…');
  const nodes = data.items as Node[];
  const ids = new Set(nodes.map((n) => n.id));
  const children = new Map<string | null, Node[]>();
  for (const node of nodes) {
    const parent = node.parentId && ids.has(node.parentId) ? node.parentId : null;
    children.set(parent, [...(children.get(parent) ?? []), node]);
  }
  return h('section', null, h('h2', null, 'CA hierarchy'), nodes.length === 0 ? h('p', { class: 'muted' }, 'No authorities yet.') : h('ul', { class: 'tree root' }, ...(children.get(null) ?? []).map((node) => h(Branch, { node, children }))));
}
