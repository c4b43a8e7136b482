'use strict';
/*
 * Pipedrive's official Node client (npm "pipedrive", API v2) against a Pipedrive at BASE_URL (the
 * sandbox's /sandbox/pipedrive, or https://<company>.pipedrive.com).
 *
 *   PIPEDRIVE_API_TOKEN=... node roundtrip.js BASE_URL [TAG]
 *
 * Writes organizations, persons, deals, a pipeline, a stage and custom fields with the client, reads
 * each back with it, lists and searches, and prints one JSON report on stdout. Every answer is also
 * compared with the client's own typed model (the property names its TypeScript declarations list):
 * a property the model declares and the answer lacks is reported, as a missing field breaks code
 * written against those types. Exits 1 on the first SDK error (its answer in the report) or when a
 * read-back differs from what was written (listed under "mismatches").
 */
const fs = require('fs');
const path = require('path');
const v2 = require('pipedrive/v2');

const [baseUrl, tag = String(Date.now())] = process.argv.slice(2);
const token = process.env.PIPEDRIVE_API_TOKEN;
if (!baseUrl || !token) {
  process.stderr.write('usage: PIPEDRIVE_API_TOKEN=... node roundtrip.js BASE_URL [TAG]\n');
  process.exit(2);
}

const config = new v2.Configuration({ apiKey: token, basePath: `${baseUrl.replace(/\/+$/, '')}/api/v2` });
const api = {
  organizations: new v2.OrganizationsApi(config),
  persons: new v2.PersonsApi(config),
  deals: new v2.DealsApi(config),
  pipelines: new v2.PipelinesApi(config),
  stages: new v2.StagesApi(config),
  dealFields: new v2.DealFieldsApi(config),
  personFields: new v2.PersonFieldsApi(config),
  organizationFields: new v2.OrganizationFieldsApi(config),
  itemSearch: new v2.ItemSearchApi(config),
};

// The client's model declarations: the property names of an interface in dist/versions/v2/models,
// less those its documentation says are sent only when asked for through include_fields.
const MODELS_DIR = path.join(path.dirname(require.resolve('pipedrive/v2')), 'models');
function modelProperties(file) {
  const text = fs.readFileSync(path.join(MODELS_DIR, `${file}.d.ts`), 'utf8');
  const body = text.slice(text.indexOf('export interface'));
  const names = [];
  let comment = '';
  for (const line of body.slice(0, body.indexOf('\n}')).split('\n')) {
    const property = line.match(/^ {4}'(\w+)'\??:/);
    if (property && !comment.includes('include_fields')) names.push(property[1]);
    comment = property ? '' : comment + line;
  }
  return names;
}

const report = { sdk_version: null, tag, calls: [], missing_model_properties: {}, mismatches: [] };
report.sdk_version = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'node_modules', 'pipedrive', 'package.json'), 'utf8'),
).version;

// The *Fields namespaces: answered only when asked for through include_fields.
const FIELD_NAMESPACES = ['ui_visibility', 'important_fields', 'required_fields'];

function conforms(what, model, object, notAskedFor = []) {
  const missing = modelProperties(model).filter((name) => !(name in object) && !notAskedFor.includes(name));
  if (missing.length) {
    const seen = new Set(report.missing_model_properties[what] || []);
    missing.forEach((name) => seen.add(name));
    report.missing_model_properties[what] = [...seen].sort();
  }
  return object;
}

async function call(name, promise) {
  try {
    const answer = await promise;
    if (!answer || answer.success !== true) {
      throw Object.assign(new Error(`${name}: answer without success: true`), { answer });
    }
    report.calls.push(name);
    return answer;
  } catch (error) {
    // The client rejects with the answer's body when there was one (its errorInterceptor).
    report.failed_call = name;
    report.error = error instanceof Error ? { message: error.message, answer: error.answer } : error;
    throw error;
  }
}

function expect(what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    report.mismatches.push({ what, expected, actual });
  }
}

async function organizations() {
  const name = `SDK Org ${tag}`;
  const created = (
    await call('addOrganization', api.organizations.addOrganization({ AddOrganizationRequest: { name } }))
  ).data;
  conforms('organization', 'organization-item', created);
  const updatedName = `${name} Ltd`;
  const updated = (
    await call(
      'updateOrganization',
      api.organizations.updateOrganization({ id: created.id, UpdateOrganizationRequest: { name: updatedName } }),
    )
  ).data;
  const read = (await call('getOrganization', api.organizations.getOrganization({ id: created.id }))).data;
  conforms('organization', 'organization-item', read);
  expect('organization name after update', [updated.name, read.name], [updatedName, updatedName]);
  const listed = (await call('getOrganizations', api.organizations.getOrganizations({ limit: 500 }))).data;
  listed.forEach((o) => conforms('organization', 'organization-item', o));
  expect('organization listed', listed.some((o) => o.id === created.id), true);
  return { id: created.id, name: read.name, owner_id: read.owner_id, listed: listed.length };
}

async function persons(orgId) {
  const name = `Ada ${tag} Lovelace`;
  const emails = [{ value: `ada.${tag}@example.com`, primary: true, label: 'work' }];
  const phones = [{ value: '+44 20 7946 0000', primary: true, label: 'work' }];
  const created = (
    await call(
      'addPerson',
      api.persons.addPerson({ AddPersonRequest: { name, org_id: orgId, emails, phones } }),
    )
  ).data;
  conforms('person', 'person', created);
  const moreEmails = [...emails, { value: `ada.home.${tag}@example.com`, primary: false, label: 'home' }];
  await call(
    'updatePerson',
    api.persons.updatePerson({ id: created.id, UpdatePersonRequest: { emails: moreEmails } }),
  );
  const read = (await call('getPerson', api.persons.getPerson({ id: created.id }))).data;
  conforms('person', 'person', read);
  expect('person name', read.name, name);
  expect('person first/last name', [read.first_name, read.last_name], [`Ada`, `${tag} Lovelace`]);
  expect('person org', read.org_id, orgId);
  expect(
    'person emails',
    read.emails.map((e) => [e.value, e.primary, e.label]),
    moreEmails.map((e) => [e.value, e.primary, e.label]),
  );
  expect(
    'person phones',
    read.phones.map((p) => [p.value, p.primary, p.label]),
    phones.map((p) => [p.value, p.primary, p.label]),
  );
  const listed = (await call('getPersons', api.persons.getPersons({ org_id: orgId }))).data;
  listed.forEach((p) => conforms('person', 'person', p));
  expect('persons of the organization', listed.map((p) => p.id), [created.id]);
  return {
    id: created.id,
    name: read.name,
    first_name: read.first_name,
    last_name: read.last_name,
    org_id: read.org_id,
    emails: read.emails,
    phones: read.phones,
  };
}

async function pipelinesAndStages() {
  const pipelinesBefore = (await call('getPipelines', api.pipelines.getPipelines({}))).data;
  pipelinesBefore.forEach((p) => conforms('pipeline', 'get-pipelines-response-all-of-data-inner', p));
  const pipeline = (
    await call(
      'addPipeline',
      api.pipelines.addPipeline({
        AddPipelineRequest: { name: `SDK pipeline ${tag}`, is_deal_probability_enabled: true },
      }),
    )
  ).data;
  conforms('pipeline', 'upsert-pipeline-response-data-data', pipeline);
  const pipelineRead = (await call('getPipeline', api.pipelines.getPipeline({ id: pipeline.id }))).data;
  conforms('pipeline', 'get-pipelines-response-all-of-data-inner', pipelineRead);
  expect('pipeline read back', [pipelineRead.name, pipelineRead.is_deal_probability_enabled], [
    `SDK pipeline ${tag}`,
    true,
  ]);
  const stage = (
    await call(
      'addStage',
      api.stages.addStage({
        AddStageRequest: {
          name: `SDK stage ${tag}`,
          pipeline_id: pipeline.id,
          deal_probability: 35,
          is_deal_rot_enabled: true,
          days_to_rotten: 12,
        },
      }),
    )
  ).data;
  conforms('stage', 'stage-item1', stage);
  const stageRead = (await call('getStage', api.stages.getStage({ id: stage.id }))).data;
  conforms('stage', 'stage-item1', stageRead);
  expect(
    'stage read back',
    [stageRead.name, stageRead.pipeline_id, stageRead.deal_probability, stageRead.is_deal_rot_enabled, stageRead.days_to_rotten],
    [`SDK stage ${tag}`, pipeline.id, 35, true, 12],
  );
  const stages = (await call('getStages', api.stages.getStages({ pipeline_id: pipeline.id }))).data;
  stages.forEach((s) => conforms('stage', 'stage-item1', s));
  expect('stages of the new pipeline', stages.map((s) => s.id), [stage.id]);
  const pipelinesAfter = (await call('getPipelines', api.pipelines.getPipelines({}))).data;
  expect('pipeline listed', pipelinesAfter.length, pipelinesBefore.length + 1);
  return {
    pipeline: { id: pipeline.id, name: pipelineRead.name },
    stage: {
      id: stage.id,
      name: stageRead.name,
      pipeline_id: stageRead.pipeline_id,
      deal_probability: stageRead.deal_probability,
      days_to_rotten: stageRead.days_to_rotten,
    },
    pipelines_listed: pipelinesAfter.length,
  };
}

async function fields(stage) {
  const result = {};
  const include_fields = FIELD_NAMESPACES.join(',');
  const kinds = [
    ['deal', api.dealFields, 'DealField', 'get-deal-fields200-response-data-inner'],
    ['person', api.personFields, 'PersonField', 'get-person-fields200-response-data-inner'],
    ['organization', api.organizationFields, 'OrganizationField', 'get-organization-fields200-response-data-inner'],
  ];
  for (const [entity, fieldsApi, noun, model] of kinds) {
    const before = (await call(`get${noun}s`, fieldsApi[`get${noun}s`]({ include_fields }))).data;
    before.forEach((f) => conforms(`${entity} field`, model, f));
    const body = {
      field_name: `SDK ${entity} reference ${tag}`,
      field_type: 'varchar',
      important_fields: { enabled: true, stage_ids: [stage.id] },
      ui_visibility: { add_visible_flag: false },
    };
    if (entity === 'deal') body.description = `The invoice a deal stands for (${tag})`;
    const created = (await call(`add${noun}`, fieldsApi[`add${noun}`]({ [`Add${noun}Request`]: body }))).data;
    conforms(`${entity} field`, model, created, FIELD_NAMESPACES);
    const read = (
      await call(`get${noun}`, fieldsApi[`get${noun}`]({ field_code: created.field_code, include_fields }))
    ).data;
    conforms(`${entity} field`, model, read);
    expect(`${entity} field read back`, [read.field_name, read.field_type, read.is_custom_field], [
      body.field_name,
      'varchar',
      true,
    ]);
    expect(`${entity} field description`, read.description, body.description);
    expect(`${entity} field important_fields`, read.important_fields, { enabled: true, stage_ids: [stage.id] });
    expect(`${entity} field ui_visibility.add_visible_flag`, read.ui_visibility.add_visible_flag, false);
    const after = (await call(`get${noun}s`, fieldsApi[`get${noun}s`]({ limit: 500 }))).data;
    after.forEach((f) => conforms(`${entity} field`, model, f, FIELD_NAMESPACES));
    expect(`${entity} field listed`, after.filter((f) => f.field_code === created.field_code).length, 1);
    result[entity] = {
      field_code: created.field_code,
      field_name: read.field_name,
      description: read.description,
      important_fields: read.important_fields,
      ui_visibility: read.ui_visibility,
      listed: after.length,
    };
  }
  return result;
}

async function deals(orgId, personId, stage, dealFieldCode) {
  const title = `SDK deal ${tag}`;
  const created = (
    await call(
      'addDeal',
      api.deals.addDeal({
        AddDealRequest: {
          title,
          org_id: orgId,
          person_id: personId,
          pipeline_id: stage.pipeline_id,
          stage_id: stage.id,
          value: 1234.5,
          currency: 'EUR',
          expected_close_date: '2031-03-31',
          custom_fields: { [dealFieldCode]: `INV-${tag}` },
        },
      }),
    )
  ).data;
  conforms('deal', 'deal', created);
  expect('deal status when created', created.status, 'open');
  const won = (
    await call(
      'updateDeal',
      api.deals.updateDeal({ id: created.id, UpdateDealRequest: { status: 'won', value: 1500 } }),
    )
  ).data;
  conforms('deal', 'deal', won);
  const read = (await call('getDeal', api.deals.getDeal({ id: created.id }))).data;
  conforms('deal', 'deal', read);
  expect('deal title', read.title, title);
  expect('deal links', [read.org_id, read.person_id, read.pipeline_id, read.stage_id], [
    orgId,
    personId,
    stage.pipeline_id,
    stage.id,
  ]);
  expect('deal value and currency', [read.value, read.currency], [1500, 'EUR']);
  expect('deal expected close date', read.expected_close_date, '2031-03-31');
  expect('deal custom field', read.custom_fields[dealFieldCode], `INV-${tag}`);
  expect('deal status after update', read.status, 'won');
  expect('deal won_time is set', typeof read.won_time === 'string' && read.won_time.length > 0, true);
  expect('deal close_time equals won_time', read.close_time, read.won_time);
  const listed = (
    await call('getDeals', api.deals.getDeals({ stage_id: stage.id, status: 'won' }))
  ).data;
  listed.forEach((d) => conforms('deal', 'deal', d));
  expect('won deals of the stage', listed.map((d) => d.id), [created.id]);
  return {
    id: created.id,
    title: read.title,
    org_id: read.org_id,
    person_id: read.person_id,
    pipeline_id: read.pipeline_id,
    stage_id: read.stage_id,
    value: read.value,
    currency: read.currency,
    status: read.status,
    won_time: read.won_time,
    close_time: read.close_time,
    expected_close_date: read.expected_close_date,
    custom_fields: { [dealFieldCode]: read.custom_fields[dealFieldCode] },
  };
}

async function search(org, person, deal) {
  const orgHits = (
    await call('searchOrganization', api.organizations.searchOrganization({ term: org.name, fields: 'name' }))
  ).data.items;
  const personHits = (
    await call('searchPersons', api.persons.searchPersons({ term: person.emails[0].value, fields: 'email' }))
  ).data.items;
  const dealHits = (
    await call('searchDeals', api.deals.searchDeals({ term: deal.title, status: 'won' }))
  ).data.items;
  const itemHits = (await call('searchItem', api.itemSearch.searchItem({ term: tag }))).data.items;
  const byField = (
    await call(
      'searchItemByField',
      api.itemSearch.searchItemByField({ term: deal.title, entity_type: 'deal', field: 'title', match: 'exact' }),
    )
  ).data;
  const ids = (hits) => hits.map((h) => h.item.id);
  expect('organization search', ids(orgHits), [org.id]);
  expect('person search by email', ids(personHits), [person.id]);
  expect('deal search', ids(dealHits), [deal.id]);
  expect('item search by field', byField.map((h) => h.id), [deal.id]);
  const found = itemHits.map((h) => [h.item.type, h.item.id]).sort();
  expect('item search finds the organization, person and deal', found, [
    ['deal', deal.id],
    ['organization', org.id],
    ['person', person.id],
  ]);
  return {
    organizations: ids(orgHits),
    persons: ids(personHits),
    deals: ids(dealHits),
    deal_hit: dealHits[0] && dealHits[0].item,
    items: found,
    by_field: byField,
  };
}

async function main() {
  report.organization = await organizations();
  report.person = await persons(report.organization.id);
  const { pipeline, stage, pipelines_listed } = await pipelinesAndStages();
  Object.assign(report, { pipeline, stage, pipelines_listed });
  report.fields = await fields(stage);
  report.deal = await deals(report.organization.id, report.person.id, stage, report.fields.deal.field_code);
  report.search = await search(report.organization, report.person, report.deal);
}

main()
  .then(() => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(report.mismatches.length ? 1 : 0);
  })
  .catch(() => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(1);
  });
