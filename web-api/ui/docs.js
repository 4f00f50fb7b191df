/* plantd API docs page: fetches /api/v1/openapi.json (OpenAPI 3.1) and renders it into #docs.
 *
 * Structure: el() builds DOM nodes (text only, never innerHTML); typeOf() names a schema in one
 * line (a $ref becomes a link to its entry under "Schemas"); schemaBlock() lists an object's
 * properties, nested ones indented; operation() renders one method+path (summary, description,
 * parameters, request body, responses); render() lays out the title, a table of contents, one
 * section per tag and the components/schemas section.
 */
'use strict';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function el(tag, text, className, children) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null && text !== '') node.textContent = String(text);
  if (className) node.className = className;
  if (children) node.append(...children.filter(Boolean));
  return node;
}

const refName = (ref) => decodeURIComponent(ref.split('/').pop());
const anchor = (kind, name) => `${kind}-${String(name).replace(/[^A-Za-z0-9_-]/g, '_')}`;

function link(name) {
  const a = el('a', name, 'type');
  a.href = `#${anchor('schema', name)}`;
  return a;
}

/** A one-line description of a schema, as an element (links for $refs). */
function typeOf(schema) {
  const span = el('span', null, 'type');
  if (!schema) return span;
  if (schema.$ref) { span.append(link(refName(schema.$ref))); return span; }
  const alts = schema.oneOf || schema.anyOf;
  if (alts) {
    alts.forEach((s, i) => { if (i) span.append(' | '); span.append(typeOf(s)); });
    return span;
  }
  if (schema.allOf) {
    schema.allOf.forEach((s, i) => { if (i) span.append(' & '); span.append(typeOf(s)); });
    return span;
  }
  const types = [].concat(schema.type || (schema.properties ? 'object' : 'any'));
  types.forEach((t, i) => {
    if (i) span.append(' | ');
    if (t === 'array') { span.append('array of '); span.append(typeOf(schema.items)); }
    else span.append(t);
  });
  if (schema.format) span.append(` (${schema.format})`);
  if (schema.enum) span.append(`: one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (schema.const !== undefined) span.append(` = ${JSON.stringify(schema.const)}`);
  return span;
}

/** The properties of an object schema (and of its allOf parts), nested objects indented. */
function schemaBlock(schema, depth = 0) {
  if (!schema || depth > 4) return null;
  const dl = el('dl', null, 'schema');
  const parts = schema.allOf ? schema.allOf.filter((s) => !s.$ref) : [schema];
  let any = false;
  for (const part of parts) {
    const required = new Set(part.required || []);
    for (const [name, prop] of Object.entries(part.properties || {})) {
      any = true;
      dl.append(el('dt', null, null, [el('span', name), ' ', typeOf(prop),
        required.has(name) ? el('span', ' required', 'req') : null]));
      const dd = el('dd', prop.description || '');
      const nested = prop.items && !prop.items.$ref ? prop.items : prop;
      if (!nested.$ref && nested.properties) dd.append(schemaBlock(nested, depth + 1));
      dl.append(dd);
    }
    if (part.additionalProperties && typeof part.additionalProperties === 'object') {
      any = true;
      dl.append(el('dt', null, null, ['(any name) ', typeOf(part.additionalProperties)]));
    }
  }
  return any ? dl : null;
}

/** Content (request or response body): each media type with its schema. */
function content(body) {
  const list = el('ul');
  for (const [type, media] of Object.entries((body && body.content) || {})) {
    const li = el('li', null, null, [el('code', type), ' ', typeOf(media.schema)]);
    if (media.schema && !media.schema.$ref) li.append(schemaBlock(media.schema) || '');
    list.append(li);
  }
  return list.children.length ? list : null;
}

function operation(method, path, op, doc) {
  const details = el('details', null, 'op');
  details.id = anchor('op', op.operationId || `${method}${path}`);
  details.append(el('summary', null, null, [
    el('span', method.toUpperCase(), `method method-${method}`), el('span', path, 'path'),
    el('span', op.summary || ''), op.deprecated ? el('strong', 'deprecated') : null]));
  const body = el('div');
  if (op.description && op.description !== op.summary) {
    for (const para of op.description.split(/\n\s*\n/)) body.append(el('p', para));
  }
  const security = op.security || doc.security;
  if (security) { // [] or [{}]: none needed
    const names = security.flatMap((s) => Object.keys(s));
    const text = names.length ? `Authentication: ${names.join(' or ')}` : 'No authentication';
    body.append(el('p', text, 'hint'));
  }
  if (op.parameters && op.parameters.length) {
    body.append(el('h4', 'Parameters'));
    const table = el('table');
    table.append(el('thead', null, null, [el('tr', null, null,
      ['Name', 'In', 'Type', 'Description'].map((h) => el('th', h)))]));
    const tbody = el('tbody');
    for (const raw of op.parameters) {
      const p = raw.$ref ? resolve(doc, raw.$ref) || {} : raw;
      tbody.append(el('tr', null, null, [
        el('td', null, 'mono', [p.name, p.required ? el('span', ' required', 'req') : null]),
        el('td', p.in), el('td', null, null, [typeOf(p.schema)]), el('td', p.description || '')]));
    }
    table.append(tbody);
    body.append(el('div', null, 'scroll', [table]));
  }
  if (op.requestBody) {
    const rb = op.requestBody.$ref ? resolve(doc, op.requestBody.$ref) : op.requestBody;
    body.append(el('h4', `Request body${rb.required ? ' (required)' : ''}`));
    if (rb.description) body.append(el('p', rb.description));
    body.append(content(rb) || el('p', 'any', 'hint'));
  }
  body.append(el('h4', 'Responses'));
  const responses = el('ul');
  for (const [status, raw] of Object.entries(op.responses || {})) {
    const r = raw.$ref ? resolve(doc, raw.$ref) || {} : raw;
    const line = [el('strong', status), ` ${r.description || ''}`, content(r)];
    responses.append(el('li', null, null, line));
  }
  body.append(responses);
  details.append(body);
  return details;
}

function resolve(doc, ref) {
  return ref.replace(/^#\//, '').split('/').reduce((node, part) =>
    node && node[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

function render(doc) {
  const root = document.getElementById('docs');
  root.replaceChildren();
  const info = doc.info || {};
  document.title = `${info.title || 'API'} ${info.version || ''}`;
  const intro = el('section', null, null, [el('h2', `${info.title || 'API'} ${info.version || ''}`),
    el('p', `OpenAPI ${doc.openapi || '?'}`, 'hint')]);
  for (const para of (info.description || '').split(/\n\s*\n/)) {
    if (para) intro.append(el('p', para));
  }
  root.append(intro);

  // Operations grouped by their first tag, in the order of doc.tags, then any others.
  const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const parameters = [...(item.parameters || []), ...(op.parameters || [])];
      const merged = { ...op, parameters };
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
      groups.get(tag).ops.push([method, path, merged]);
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  const toc = el('ul');
  for (const { tag } of groups.values()) {
    const a = el('a', tag.name);
    a.href = `#${anchor('tag', tag.name)}`;
    toc.append(el('li', null, null, [a, tag.description ? ` — ${tag.description}` : '']));
  }
  const sa = el('a', `Schemas (${Object.keys(schemas).length})`);
  sa.href = '#schemas';
  toc.append(el('li', null, null, [sa]));
  root.append(el('section', null, null, [el('h2', 'Contents'), el('nav', null, 'toc', [toc])]));

  for (const { tag, ops } of groups.values()) {
    if (!ops.length) continue;
    const section = el('section', null, null, [el('h2', tag.name)]);
    section.id = anchor('tag', tag.name);
    if (tag.description) section.append(el('p', tag.description));
    for (const [method, path, op] of ops) section.append(operation(method, path, op, doc));
    root.append(section);
  }

  const section = el('section', null, null, [el('h2', 'Schemas')]);
  section.id = 'schemas';
  for (const [name, schema] of Object.entries(schemas)) {
    const block = el('div', null, null, [el('h3', name), el('p', null, null, [typeOf(schema)])]);
    block.id = anchor('schema', name);
    if (schema.description) block.append(el('p', schema.description));
    const includes = (schema.allOf || []).filter((s) => s.$ref).map((s) => link(refName(s.$ref)));
    if (includes.length) block.append(el('p', null, null, ['Includes: ', ...includes]));
    block.append(schemaBlock(schema) || '');
    section.append(block);
  }
  root.append(section);
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target) {
    if (target.tagName === 'DETAILS') target.open = true;
    target.scrollIntoView();
  }
}

fetch('/api/v1/openapi.json')
  .then(async (res) => {
    if (!res.ok) throw new Error(`GET /api/v1/openapi.json: ${res.status} ${await res.text()}`);
    return res.json();
  })
  .then(render)
  .catch((e) => {
    const status = document.getElementById('status');
    status.className = 'error';
    status.textContent = e.message;
    const docs = document.getElementById('docs');
    docs.replaceChildren(el('p', 'The API document could not be loaded.'));
  });
