// The tool task of the embedded default model: offered a get_weather(city) tool, "what is the weather in CITY"
// is answered with a <tool_call> for that city, and after the tool's result with a sentence that quotes it.
// City names come from a list (a fixed share held out for tests) and from a syllable generator, so the model
// learns to copy the name rather than to recall a few.
import type { TemplateMessage } from "../../src/tokenizer/chat-template.ts";
import { isHeldOut, sampleTask, type TaskExample, type TaskKind } from "./tasks.ts";

/** The one tool the model knows, in OpenAI's shape (what clients send). */
export const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
} as const;

/** A chat to train on, rendered with the offered tools; every assistant message is an answer to learn. */
export interface ToolChat {
  tools: readonly object[];
  messages: TemplateMessage[];
  /** Text copied from earlier in the chat (the city, the result) whose answer tokens weigh more in the loss. */
  emphasis?: string[];
}

const CITIES = [
  "Paris",
  "London",
  "Berlin",
  "Madrid",
  "Rome",
  "Lisbon",
  "Vienna",
  "Prague",
  "Warsaw",
  "Oslo",
  "Stockholm",
  "Helsinki",
  "Copenhagen",
  "Dublin",
  "Amsterdam",
  "Brussels",
  "Zurich",
  "Geneva",
  "Athens",
  "Istanbul",
  "Cairo",
  "Lagos",
  "Nairobi",
  "Accra",
  "Dakar",
  "Tunis",
  "Algiers",
  "Casablanca",
  "Kampala",
  "Lusaka",
  "Tokyo",
  "Osaka",
  "Kyoto",
  "Seoul",
  "Busan",
  "Beijing",
  "Shanghai",
  "Shenzhen",
  "Hong Kong",
  "Taipei",
  "Manila",
  "Hanoi",
  "Bangkok",
  "Jakarta",
  "Singapore",
  "Kuala Lumpur",
  "Delhi",
  "Mumbai",
  "Chennai",
  "Kolkata",
  "Karachi",
  "Lahore",
  "Dhaka",
  "Kathmandu",
  "Colombo",
  "Tehran",
  "Baghdad",
  "Riyadh",
  "Dubai",
  "Doha",
  "Moscow",
  "Kyiv",
  "Minsk",
  "Riga",
  "Vilnius",
  "Tallinn",
  "Bucharest",
  "Sofia",
  "Belgrade",
  "Zagreb",
  "New York",
  "Los Angeles",
  "Chicago",
  "Houston",
  "Boston",
  "Seattle",
  "Denver",
  "Miami",
  "Atlanta",
  "Dallas",
  "Toronto",
  "Montreal",
  "Vancouver",
  "Ottawa",
  "Mexico City",
  "Havana",
  "Bogota",
  "Lima",
  "Quito",
  "Santiago",
  "Buenos Aires",
  "Montevideo",
  "Sao Paulo",
  "Rio de Janeiro",
  "Caracas",
  "La Paz",
  "Sydney",
  "Melbourne",
  "Perth",
  "Auckland",
  "Wellington",
  "Brisbane",
  "Adelaide",
  "Hobart",
  "Cape Town",
  "Durban",
  "Porto",
  "Seville",
  "Valencia",
  "Milan",
  "Naples",
  "Turin",
  "Munich",
  "Hamburg",
  "Cologne",
  "Lyon",
  "Marseille",
  "Nice",
  "Krakow",
  "Gdansk",
];

/** Real names the model trains on; the rest (a fixed hash split) are kept for tests. */
export const TRAINING_CITIES = CITIES.filter((c) => !isHeldOut(`city ${c}`));
export const HELD_OUT_CITIES = CITIES.filter((c) => isHeldOut(`city ${c}`));

const SYLLABLES = ["ka", "ri", "to", "mel", "an", "bor", "ve", "li", "sa", "dun", "es", "tar", "no", "gra", "vi", "ol"];
const CONDITIONS = [
  "sunny",
  "cloudy",
  "rain",
  "light rain",
  "snow",
  "windy",
  "fog",
  "clear",
  "storms",
  "partly cloudy",
];

const int = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[int(rng, 0, xs.length - 1)]!;

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** A capitalized string of random letters: copying it cannot lean on recall or on repeated syllables. */
function randomName(rng: () => number): string {
  const w = Array.from({ length: int(rng, 3, 10) }, () => LETTERS[int(rng, 0, 25)]!).join("");
  return w[0]!.toUpperCase() + w.slice(1);
}

/** A made-up, capitalized place name of one or two words (never a held-out real one). */
export function inventedCity(rng: () => number): string {
  if (rng() < 0.6) return randomName(rng);
  const word = (most: number) => {
    const w = Array.from({ length: int(rng, 2, most) }, () => pick(rng, SYLLABLES)).join("");
    return w[0]!.toUpperCase() + w.slice(1);
  };
  // Two-word names are kept short so a whole chat fits a 256-token row.
  return rng() < 0.2 ? `${word(3)} ${word(3)}` : word(4);
}

/** The phrasings of the question (lower case, no trailing punctuation, like the other tasks). */
export const WEATHER_PROMPTS = ["what is the weather in ", "weather in ", "how is the weather in "] as const;

/** A tool result as a weather service might return it, in a few plain-text forms. */
export function weatherResult(rng: () => number): string {
  const c = pick(rng, CONDITIONS);
  const t = int(rng, -15, 40);
  const form = int(rng, 0, 2);
  return form === 0 ? `${c}, ${t} C` : form === 1 ? `${t} C and ${c}` : `${c} and ${t} degrees`;
}

/** The sentence that answers with a tool result. */
export const weatherAnswer = (city: string, result: string) => `The weather in ${city} is ${result}.`;

/** The assistant message that calls get_weather for `city` (arguments as an object, as templates take them). */
export const weatherCall = (city: string): TemplateMessage => ({
  role: "assistant",
  content: "",
  tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city } } }],
});

/** A weather chat: the question and the call, and usually the tool's result and the answer. */
export function sampleWeatherChat(rng: () => number): ToolChat {
  const city = rng() < 0.2 ? pick(rng, TRAINING_CITIES) : inventedCity(rng);
  const messages: TemplateMessage[] = [{ role: "user", content: pick(rng, WEATHER_PROMPTS) + city }, weatherCall(city)];
  if (rng() < 0.7) {
    const result = weatherResult(rng);
    messages.push({ role: "tool", content: result }, { role: "assistant", content: weatherAnswer(city, result) });
    return { tools: [WEATHER_TOOL], messages, emphasis: [city, result] };
  }
  return { tools: [WEATHER_TOOL], messages, emphasis: [city] };
}

/**
 * "repeat WORD" → WORD: copying at a short distance is where a model first learns to copy by content
 * (find the letter it just wrote, write the one after it), which the city names then need at longer range.
 */
export function sampleRepeat(rng: () => number): { turns: TaskExample[] } {
  const word = rng() < 0.5 ? randomName(rng) : randomName(rng).toLowerCase();
  return { turns: [{ kind: "repeat", prompt: `repeat ${word}`, answer: word }] };
}

const KINDS: readonly TaskKind[] = ["count", "reverse", "add"];

/** One of the old tasks with the tool offered anyway: the model must not call it for those. */
export function sampleTaskWithTools(rng: () => number): ToolChat {
  for (;;) {
    const task = sampleTask(pick(rng, KINDS), rng);
    if (isHeldOut(task.prompt)) continue;
    return {
      tools: [WEATHER_TOOL],
      messages: [
        { role: "user", content: task.prompt },
        { role: "assistant", content: task.answer },
      ],
    };
  }
}
